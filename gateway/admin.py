"""Company admins: who administers which company, and each member's standing, read from the
policy and the store. Pages, the JSON API and the CLI all show members through here.

Members of a company are the users the store has seen in it plus the users its policy file
lists, each checked against the policy in force: a user the policy now places elsewhere is
never shown (nor found) under this company.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway import regulation
from gateway.enforcement import is_enforced
from gateway.policy.model import Company, Policy
from gateway.sessions import ActiveSession
from gateway.store import Store
from gateway.store.base import UserRecord

REAUTH_AFTER = 15 * 60  # seconds: an admin action needs a second factor at most this old
# A login that signs in from this many distinct browsers within SHARED_WINDOW before enrolling
# is "possibly shared" (the Backupify warning).
SHARED_BROWSERS = 3
SHARED_WINDOW = 7 * 86400.0
PENDING_PHONE = "pending-phone:"  # encryption context of a number an admin set, with the user
STATUSES = ("enrolled", "deferred", "not_enrolled")
FILTERS = (*STATUSES, "locked_out", "possibly_shared", "phone_pending")
CSV_COLUMNS = (
    "user",
    "name",
    "status",
    "methods",
    "last_2fa",
    "last_2fa_from",
    "deferred_until",
    "locked_out_until",
    "possibly_shared",
    "phone_pending",
    "admin",
    "first_seen",
    "last_sign_in",
)


def is_admin(company: Company, user: str | None) -> bool:
    return user is not None and user.lower() in (admin.lower() for admin in company.admins)


def administered(policy: Policy, user: str | None) -> list[Company]:
    """The companies whose policy names `user` as an admin, by id."""
    return sorted((c for c in policy.companies if is_admin(c, user)), key=lambda c: c.id)


def belongs(policy: Policy, company: Company, user: str, record: UserRecord | None = None) -> bool:
    """The policy places `user` in `company`: by name or domain, or by the directory groups
    the store recorded at the user's last sign-in (members by group)."""
    found = policy.company_for(user, recorded_groups(record))
    return found is not None and found.id == company.id


def recorded_groups(record: UserRecord | None) -> tuple[str, ...]:
    groups = record.facts.get("groups") if record is not None else None
    return tuple(str(group) for group in groups) if isinstance(groups, list) else ()


EVERYWHERE = ("user", "user_day")  # the regulation scopes that hold a user wherever they are


@dataclass(frozen=True)
class Lock:
    """One lockout in force for a member (gateway.regulation): everywhere (scope user or
    user_day), from one address (user_ip: the member there; ip: anyone there), or in one of
    the member's own browsers (user_browser)."""

    scope: str
    until: float
    address: str | None = None  # for user_ip and ip: the address (an IPv6 /64), or "unknown"

    @property
    def everywhere(self) -> bool:
        return self.scope in EVERYWHERE

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope, "address": self.address, "until": iso(self.until)}


@dataclass(frozen=True)
class Member:
    user: str
    name: str | None
    listed: bool  # named in the company's policy file (else seen by the gateway)
    admin: bool
    methods: tuple[str, ...]
    first_seen: float | None
    last_sign_in: float | None
    last_2fa: float | None
    last_2fa_from: str | None
    deferred_until: float | None
    locked_out_until: float | None
    browsers: int  # distinct browsers seen before enrolment within SHARED_WINDOW
    phone_pending: bool  # an admin set a new number the member has not confirmed yet
    lockouts: tuple[Lock, ...] = ()  # every lockout in force: everywhere first, then by place

    @property
    def enrolled(self) -> bool:
        return bool(self.methods)

    @property
    def possibly_shared(self) -> bool:
        return self.browsers >= SHARED_BROWSERS

    @property
    def status(self) -> str:
        if self.enrolled:
            return "enrolled"
        return "deferred" if self.deferred_until is not None else "not_enrolled"

    def flags(self) -> set[str]:
        found = {self.status}
        if self.locked_out_until is not None:
            found.add("locked_out")
        if self.possibly_shared:
            found.add("possibly_shared")
        if self.phone_pending:
            found.add("phone_pending")
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "name": self.name,
            "status": self.status,
            "methods": list(self.methods),
            "admin": self.admin,
            "listed_in_policy": self.listed,
            "first_seen": iso(self.first_seen),
            "last_sign_in": iso(self.last_sign_in),
            "last_2fa": iso(self.last_2fa),
            "last_2fa_from": self.last_2fa_from,
            "deferred_until": iso(self.deferred_until),
            "locked_out_until": iso(self.locked_out_until),
            "possibly_shared": self.possibly_shared,
            "distinct_browsers": self.browsers,
            "phone_pending": self.phone_pending,
            "lockouts": [lock.to_json() for lock in self.lockouts],
        }


def iso(moment: float | None) -> str | None:
    """A time as RFC 3339 in UTC, to the second."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(moment: float | None) -> str:
    """A time as people read it on the pages and in the CLI."""
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def enforced_since(store: Store, company: Company) -> float | None:
    """Since when the store enforces the company (the ratchet), or None."""
    return await store.enforced_since(company.id)


async def member(
    store: Store, policy: Policy, company: Company, user: str, now: float
) -> Member | None:
    """The member's standing, or None when the policy does not place `user` in `company`."""
    user = user.strip().lower()
    if not user:
        return None
    record = await store.get_user(user)
    if not belongs(policy, company, user, record):
        return None
    if record is None and user not in company.users:
        return None  # never seen and not listed: not a member anyone can see yet
    return await _standing(store, company, user, record, now)


async def members(store: Store, policy: Policy, company: Company, now: float) -> list[Member]:
    """Every member of `company` the store has seen or its policy lists, by user name."""
    records = {r.user: r for r in await store.list_users(company.id)}
    names = sorted(set(records) | {user.lower() for user in company.users})
    return [
        await _standing(store, company, name, records.get(name), now)
        for name in names
        if belongs(policy, company, name, records.get(name))
    ]


async def _standing(
    store: Store, company: Company, user: str, record: UserRecord | None, now: float
) -> Member:
    facts = dict(record.facts) if record is not None else {}
    methods = tuple(await store.list_methods(user))
    deferred = None
    if not methods and not await is_enforced(company, store, user):
        deferral = await store.get_deferral(user)
        if deferral is not None and deferral.company == company.id:
            until = min(deferral.until, deferral.since + company.deferral.total_seconds())
            deferred = until if until > now else None
    locks = await lockouts(store, company, user, now)
    everywhere = [lock.until for lock in locks if lock.everywhere]
    return Member(
        user=user,
        name=_text(facts.get("name")),
        listed=user in company.users,
        admin=is_admin(company, user),
        methods=methods,
        first_seen=record.first_seen if record is not None else None,
        last_sign_in=_number(facts.get("last_sign_in")),
        last_2fa=_number(facts.get("last_2fa")),
        last_2fa_from=_text(facts.get("last_2fa_ip")),
        deferred_until=deferred,
        locked_out_until=max(everywhere, default=None),
        browsers=await store.browsers_since(user, now - SHARED_WINDOW),
        phone_pending=bool(facts.get("pending_phone")),
        lockouts=tuple(locks),
    )


async def lockouts(store: Store, company: Company, user: str, now: float) -> list[Lock]:
    """The lockouts in force for `user`, as sign-in meets them (gateway.regulation): the
    user-wide ones, then those of each address and browser the user's wrong answers came from
    within the window (the store's places list), by scope and place. Delays are not lockouts."""
    limits = company.attempts
    counted_as = regulation.user_key(user)

    async def since(key: str, scope: str) -> list[float]:
        return await store.failures_since(key, now - regulation.limit_of(limits, scope)[1])

    def locked(failures: dict[str, list[float]]) -> regulation.Lockout | None:
        found = regulation.lockout(failures, now, limits)
        return found if found is not None and not found.is_delay else None

    everywhere = {
        "user": await since(f"user:{counted_as}", "user"),
        "user_day": await since(regulation.second_factor_key(counted_as), "user_day"),
    }
    found = [Lock(lock.scope, lock.until) for lock in [locked(everywhere)] if lock is not None]
    window = limits.window.total_seconds()
    for key in await store.failure_keys(regulation.places_key(counted_as), now - window):
        place = regulation.place_of(key)
        if place is None:
            continue
        scope, where = place
        if scope == "user_ip":
            lock = locked(
                {"user_ip": await since(key, scope), "ip": await since(f"ip:{where}", "ip")}
            )
            if lock is not None:
                found.append(Lock(lock.scope, lock.until, where))
        else:  # the browser's own wrong passwords, with the user's wrong second factors
            # (the day's: lockout() counts those within this scope's window)
            own = await since(key, scope) + everywhere["user_day"]
            lock = locked({scope: own})
            if lock is not None:
                found.append(Lock(lock.scope, lock.until))
    # everywhere, then by address, then the browsers (whose ids mean nothing to anyone)
    return sorted(found, key=lambda lock: (not lock.everywhere, lock.address is None))


def session_json(found: ActiveSession, current: str | None = None) -> dict[str, Any]:
    """One of a member's live sessions, for the JSON API (docs/admin-api.yaml, Session):
    `current` is the storage key of the session making the request."""
    session = found.session
    return {
        "id": found.handle,
        "browser": found.browser,
        "user_agent": session.user_agent,
        "address": session.address,
        "application": session.app,
        "signed_in": iso(session.created),
        "second_factor": session.second_factor,
        "last_seen": iso(session.last_seen),
        "expires": iso(session.expires_at()),
        "current": found.key == current,
    }


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def select(found: Iterable[Member], query: str = "", status: str = "") -> list[Member]:
    """Members whose address or name contains `query` (any case) and that have the flag
    `status` (one of FILTERS; empty for all)."""
    needle = query.strip().lower()
    return [
        m
        for m in found
        if (not needle or needle in m.user or needle in (m.name or "").lower())
        and (not status or status in m.flags())
    ]


def to_csv(found: Iterable[Member]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for m in found:
        row = [
            m.user,
            m.name or "",
            m.status,
            " ".join(m.methods),
            iso(m.last_2fa) or "",
            m.last_2fa_from or "",
            iso(m.deferred_until) or "",
            iso(m.locked_out_until) or "",
            "yes" if m.possibly_shared else "no",
            "yes" if m.phone_pending else "no",
            "yes" if m.admin else "no",
            iso(m.first_seen) or "",
            iso(m.last_sign_in) or "",
        ]
        # a cell starting like a formula is read as text by spreadsheets (CSV injection)
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return out.getvalue()
