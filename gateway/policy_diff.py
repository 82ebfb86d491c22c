"""What a policy change would do to the people who use the gateway (`gateway policy diff`).

Pure: the CLI reads both policy directories and, from the store, the users it has seen sign in,
their second factors, deferrals and the enforcement ratchet; this module decides each user's
requests under the old policy and under the new one and lists what differs. The decisions come
from the gateway's own code (`Policy.access_for`, `gateway.decision.decide`, the trusted-network
and enforcement rules of `gateway.trust` and `gateway.enforcement`), never from a copy of it.

The paths compared, per application: "/" and, for each pattern of every access rule in either
policy, one concrete path it matches ("/admin/**" -> "/admin/x"); the methods: each method some
rule is scoped to, and the rest as one ("any other method"). A user is taken once the password is
right, from the address they last passed a second factor from, holding the trusted-network
cookie that passing it there gives (so a trusted network that contains that address spares them
the challenge); their enrolment, deferral and the store's ratchet are as the store says now.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gateway import trust
from gateway.clientip import parse_ip
from gateway.decision import Mode, Outcome, Standing, decide
from gateway.durations import format_duration
from gateway.enforcement import user_keys
from gateway.explain import utc
from gateway.paths import BadPath, normalise_path
from gateway.policy.globs import PathPattern, parts_of
from gateway.policy.model import OTHER_METHOD, Access, AccessRule, AccountType, Company, Policy
from gateway.sessions import Level
from gateway.store.base import Deferral, UserRecord

ANY_METHOD = "any method"
OTHER_METHODS = "any other method"
UNMATCHED = "(no rule)"  # the pattern of "/" when no rule of either policy matches it


@dataclass(frozen=True)
class SeenUser:
    """One user as the store has seen them."""

    user: str
    address: str | None = None  # where they last passed a second factor (last_2fa_ip)
    last_sign_in: float | None = None
    methods: tuple[str, ...] = ()  # second factors enrolled
    deferral: Deferral | None = None  # "remind me later", as recorded


class Kind(StrEnum):
    """What the new policy newly does on a path (the issue's four words)."""

    SECOND_FACTOR = "second_factor"  # asks for a second factor (or its enrolment)
    DENY = "deny"
    SKIP = "skip"  # lets the second factor be skipped (trusted network, deferral) or put off
    THROUGH = "through"  # lets the request through on the password alone, or without sign-in


KIND_TEXT = {
    Kind.SECOND_FACTOR: "newly asked for a second factor",
    Kind.DENY: "newly denied",
    Kind.SKIP: "newly let skip the second factor",
    Kind.THROUGH: "newly let through",
}


@dataclass(frozen=True)
class Verdict:
    """How the gateway answers one request of the user once the password is right."""

    outcome: Outcome
    may_defer: bool = False  # with ENROL: the enrolment page offers "remind me later"

    def __str__(self) -> str:
        return f"{self.outcome} (may put it off)" if self.may_defer else str(self.outcome)

    @property
    def kind(self) -> Kind:
        if self.outcome is Outcome.DENY:
            return Kind.DENY
        if self.outcome in (Outcome.FORWARD, Outcome.FORWARD_ANONYMOUS):
            return Kind.THROUGH
        if self.outcome in (Outcome.SKIP_TRUSTED, Outcome.SKIP_DEFERRED) or self.may_defer:
            return Kind.SKIP
        return Kind.SECOND_FACTOR


@dataclass(frozen=True)
class Position:
    """What one policy makes of one user, whatever the path."""

    company: Company | None
    enforced: bool
    network: str | None  # the company's trusted network the address is in, if it spares them
    standing: Standing
    may_defer: bool


@dataclass(frozen=True)
class Place:
    path: str  # the concrete path compared
    pattern: str  # the rule pattern it stands for ("/" for the root)
    methods: tuple[str, ...]  # (ANY_METHOD,), or the methods named (and OTHER_METHODS)

    def __str__(self) -> str:
        if self.pattern == UNMATCHED:
            shown = "/ (and any path no rule matches)"
        elif self.pattern == self.path:
            shown = self.path
        else:
            shown = f"{self.pattern} (as {self.path})"
        return shown if self.methods == (ANY_METHOD,) else f"{shown} [{', '.join(self.methods)}]"


@dataclass(frozen=True)
class Change:
    """One way the user is answered otherwise, and the places of one application where."""

    app: str
    places: tuple[Place, ...]
    before: Verdict
    after: Verdict
    reasons: tuple[str, ...]

    @property
    def kind(self) -> Kind:
        return self.after.kind


@dataclass(frozen=True)
class UserDiff:
    user: SeenUser
    company_before: str | None
    company_after: str | None
    changes: tuple[Change, ...] = ()


def seen_user(
    record: UserRecord, methods: Sequence[str], deferral: Deferral | None
) -> SeenUser | None:
    """The user of a store record, or None when it never signed in (an admin's entry only)."""
    facts = record.facts
    signed_in, address = facts.get("last_sign_in"), facts.get("last_2fa_ip")
    if not isinstance(signed_in, int | float) and facts.get("last_2fa") is None:
        return None
    return SeenUser(
        record.user,
        address if isinstance(address, str) else None,
        float(signed_in) if isinstance(signed_in, int | float) else None,
        tuple(methods),
        deferral,
    )


def position(
    policy: Policy, user: SeenUser, enforced_keys: Collection[str], now: float
) -> Position:
    """As gateway.signin.standing.standing_of, with the store's facts given."""
    company = policy.company_for(user.user)
    enrolled = bool(user.methods)
    enforced = (
        company is None
        or company.enforce_2fa
        or company.id in enforced_keys
        or any(key in enforced_keys for key in user_keys(user.user))
    )
    client = company is not None and company.account_type is AccountType.CLIENT
    deferred = None
    record = user.deferral
    # a deferral granted under another company is not honoured; a shorter `deferral:` caps it
    if (
        not (enrolled or enforced)
        and company is not None
        and record
        and record.company == company.id
    ):
        deferred = min(record.until, record.since + company.deferral.total_seconds())
    network = None
    if enrolled and not client and user.address is not None:
        found = trust.network_for(company, parse_ip(user.address))
        network = None if found is None else str(found)
    standing = Standing(
        enrolled=enrolled,
        enforced=enforced,
        deferred_until=deferred,
        trusted=network is not None,
        client_account=client,
        now=now,
    )
    may_defer = not enrolled and not enforced and company is not None and not client
    return Position(company, enforced, network, standing, may_defer)


def verdict(access: Access, where: Position) -> Verdict:
    decision = decide(access, Mode.INTERCEPT, Level.FIRST_FACTOR, where.standing)
    return Verdict(decision.outcome, decision.outcome is Outcome.ENROL and where.may_defer)


def sample_path(pattern: str) -> str | None:
    """A concrete, normalised path `pattern` matches ("/a/*.pdf" -> "/a/x.pdf"), or None."""
    filler = {"*": "x", "**": "x", "/**/": "/x/", "/**": "/x"}
    path = "".join(filler[text] if wild else text for wild, text in parts_of(pattern))
    try:
        if normalise_path(path) != path:
            return None
    except BadPath:
        return None
    return path if PathPattern(pattern).matches(path) else None


def probes(rules: Iterable[AccessRule]) -> dict[str, str]:
    """Concrete path -> the pattern it stands for: "/" first, then each rule's patterns."""
    found = {"/": "/"}
    for rule in rules:
        for pattern in rule.paths:
            path = sample_path(pattern)
            if path is not None:
                found.setdefault(path, pattern)
    return found


def _methods(old: Policy, new: Policy, app: str) -> tuple[str, ...]:
    named = dict.fromkeys(
        m
        for policy in (old, new)
        for rule in policy.access_rules.get(app, ())
        for m in rule.methods or ()
    )
    return (*named, OTHER_METHOD)


def _rule_ref(rule: AccessRule | None) -> str:
    return "the two_factor default" if rule is None else f"{rule.source}:{rule.line}"


def _company_name(company: Company | None) -> str:
    return "(no company)" if company is None else company.id


def _position_reasons(user: SeenUser, old: Position, new: Position) -> list[str]:
    """Why the user's second factor is treated differently, apart from the access rule."""
    reasons: list[str] = []
    if _company_name(old.company) != _company_name(new.company):
        reasons.append(f"company {_company_name(old.company)} -> {_company_name(new.company)}")
    enrolled = bool(user.methods)  # enforcement and deferral matter only before enrolment
    if old.enforced != new.enforced and not enrolled:
        if new.company is None:
            reasons.append("second factor required: members of no company are always enforced")
        elif new.enforced and old.company is not None and old.company.id == new.company.id:
            reasons.append("second factor newly required (enforce_2fa turned on)")
        elif new.enforced:
            reasons.append(f"second factor newly required ({new.company.id} enforces 2FA)")
        else:
            reasons.append("no longer enforced (enforce_2fa off, and the store does not enforce)")
    if old.standing.client_account != new.standing.client_account:
        after = "client" if new.standing.client_account else "partner"
        reasons.append(f"account type -> {after}")
    if old.may_defer != new.may_defer and new.company is not None and not enrolled:
        if new.may_defer:
            wait = format_duration(new.company.deferral)
            reasons.append(f"may now put it off (deferral of {wait})")
        else:
            reasons.append("may no longer put enrolment off")
    was, until = old.standing.deferred_until, new.standing.deferred_until
    if was != until:
        if until is None:
            reasons.append("the deferral the user chose no longer applies")
        else:
            reasons.append(
                f"the deferral the user chose {'now ' if was else ''}ends at {utc(until)}"
            )
    if old.network != new.network:
        if new.network is not None:
            reasons.append(
                f"trusted network {new.network} now spares the challenge from {user.address}"
            )
        else:
            reasons.append(f"no trusted network spares the challenge from {user.address} any more")
    return reasons


def diff_user(
    old: Policy,
    new: Policy,
    user: SeenUser,
    apps: Sequence[str],
    enforced_keys: Collection[str],
    now: float,
) -> UserDiff:
    """Every path of `apps` where the new policy answers the user otherwise than the old."""
    before, after = position(old, user, enforced_keys, now), position(new, user, enforced_keys, now)
    moved = tuple(_position_reasons(user, before, after))
    changes: list[Change] = []
    for app in apps:
        rules = (*old.access_rules.get(app, ()), *new.access_rules.get(app, ()))
        methods = _methods(old, new, app)
        found: dict[tuple[Verdict, Verdict, tuple[str, ...]], list[Place]] = {}
        for path, pattern in probes(rules).items():
            here: dict[tuple[Verdict, Verdict, tuple[str, ...]], list[str]] = {}
            for method in methods:
                old_access, old_rule = old.access_for(app, method, path)
                new_access, new_rule = new.access_for(app, method, path)
                was, becomes = verdict(old_access, before), verdict(new_access, after)
                if was == becomes:
                    continue
                # the same rule's access: the user's standing made the difference
                reasons = moved
                if old_access is not new_access:
                    old_ref, new_ref = _rule_ref(old_rule), _rule_ref(new_rule)
                    reasons = (f"access {old_access} ({old_ref}) -> {new_access} ({new_ref})",)
                here.setdefault((was, becomes, reasons), []).append(method)
            if path == "/" and not any(
                policy.access_for(app, method, path)[1]
                for policy in (old, new)
                for method in methods
            ):
                pattern = UNMATCHED
            for key, named in here.items():
                place = Place(path, pattern, _method_label(named, methods))
                found.setdefault(key, []).append(place)
        changes.extend(
            Change(app, tuple(places), was, becomes, reasons)
            for (was, becomes, reasons), places in found.items()
        )
    return UserDiff(
        user,
        None if before.company is None else before.company.id,
        None if after.company is None else after.company.id,
        tuple(changes),
    )


def _method_label(named: list[str], every: tuple[str, ...]) -> tuple[str, ...]:
    if len(named) == len(every):
        return (ANY_METHOD,)
    return tuple(OTHER_METHODS if method == OTHER_METHOD else method for method in named)


def diff(
    old: Policy,
    new: Policy,
    users: Iterable[SeenUser],
    apps: Iterable[str] = (),
    enforced_keys: Collection[str] = (),
    now: float = 0.0,
) -> list[UserDiff]:
    """The users the change affects (a company move or a path answered otherwise), by name.

    `apps` are the settings' applications; those with access rules in either policy are added.
    `enforced_keys` are the store's enforced companies and members (gateway.enforcement keys).
    """
    names = dict.fromkeys([*apps, *old.access_rules, *new.access_rules])
    found = []
    for user in sorted(users, key=lambda seen: seen.user):
        result = diff_user(old, new, user, list(names), enforced_keys, now)
        if result.changes or result.company_before != result.company_after:
            found.append(result)
    return found


def kinds(diffs: Iterable[UserDiff]) -> dict[Kind, int]:
    """How many users each kind of change reaches."""
    counts = dict.fromkeys(Kind, 0)
    for user_diff in diffs:
        for kind in {change.kind for change in user_diff.changes}:
            counts[kind] += 1
    return counts
