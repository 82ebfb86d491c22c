"""What the policy means for one request, a company or the store, in plain lines for operators.

Everything here is pure: the CLI gathers the policy, the settings' applications and, when it can,
a few facts from the store, and these functions turn them into text. `gateway policy explain`
and `gateway policy check -c` (the enforcement ratchet) use them; `gateway companies status`
has its table in `gateway.companies_status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from gateway import trust
from gateway.clientip import parse_ip
from gateway.decision import Decision, Mode, Standing, decide
from gateway.durations import format_duration
from gateway.hosts import canonical_host
from gateway.paths import BadPath, normalise_path
from gateway.policy.model import Access, AccessRule, AccountType, Company, Policy
from gateway.routing import Router, mode_of
from gateway.sessions import Level
from gateway.settings import Application

LABEL_WIDTH = 13


def utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- gateway policy explain --------------------------------------------------------------------


@dataclass(frozen=True)
class StoreFacts:
    """What the store says about one user and their company."""

    enforced_since: float | None = None  # the company's ratchet
    methods: tuple[str, ...] = ()  # second factors enrolled
    deferred_until: float | None = None  # "remind me later", as recorded


@dataclass(frozen=True)
class Request:
    user: str
    ip: str
    url: str
    method: str = "GET"
    groups: tuple[str, ...] = ()  # the user's directory groups (members by group)


@dataclass(frozen=True)
class Explanation:
    lines: list[str]
    ok: bool  # False when the request never reaches a decision (bad path, no application)


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, label: str, text: str, *more: str) -> None:
        self.lines.append(f"{label + ':':<{LABEL_WIDTH}}{text}")
        self.lines.extend(" " * LABEL_WIDTH + line for line in more)


def _split_url(url: str) -> tuple[str | None, str]:
    """The Host the browser would send and the path as on the wire, without the query."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2] or None
    return host, parts.path or ("/" if host else "")


def _choose_application(
    lines: _Lines,
    host: str | None,
    applications: Sequence[Application] | None,
    app_name: str | None,
) -> tuple[str, Mode] | None:
    if applications is None:
        if app_name is None:
            lines.add("application", "unknown: without settings, name it with --app")
            return None
        lines.add("application", f"{app_name} (given with --app; no settings to route by host)")
        return app_name, Mode.INTERCEPT  # the mode does not matter once the password is known
    if app_name is not None:
        for named in applications:
            if named.name == app_name:
                lines.add("application", f"{app_name} (given with --app), {_identity(named)}")
                return app_name, mode_of(named)
        known = ", ".join(application.name for application in applications) or "none"
        lines.add(
            "application", f'no application named "{app_name}" in the settings; known: {known}'
        )
        return None
    if host and canonical_host(host) is None:
        lines.add("application", f"{host!r} is not one host name: the gateway refuses it (400)")
        return None
    application = Router(tuple(applications)).route(canonical_host(host) if host else None)
    if application is None:
        lines.add(
            "application",
            f"none answers for the host {host or '(none)'}: the gateway refuses the request (421)",
        )
        return None
    via = f"the host {host}" if _exact(application, host) else "the catch-all host *"
    lines.add("application", f"{application.name} (by {via}), {_identity(application)}")
    return application.name, mode_of(application)


def _exact(application: Application, host: str | None) -> bool:
    if not host:
        return False
    host = canonical_host(host) or ""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return host in application.hosts or name in application.hosts


def _identity(application: Application) -> str:
    return f"identity {application.identity}"


def _rule_text(rule: AccessRule) -> str:
    methods = f" for {', '.join(rule.methods)}" if rule.methods is not None else ""
    text = f"{rule.source}:{rule.line}: paths {', '.join(rule.paths)}{methods} -> {rule.access}"
    if rule.reauthenticate_after is not None:
        text += f", reauthenticate_after {format_duration(rule.reauthenticate_after)}"
    return text


def _step_up(lines: _Lines, access: Access, rule: AccessRule | None, mode: Mode) -> None:
    """The step-up line of a rule with `reauthenticate_after`: what a verified session meets."""
    if rule is None or rule.reauthenticate_after is None:
        return
    bound = rule.reauthenticate_after.total_seconds()
    cases = (
        (
            f"second factor presented less than {format_duration(rule.reauthenticate_after)} ago",
            0.0,
        ),
        (
            f"second factor presented {format_duration(rule.reauthenticate_after)} ago or longer",
            bound,
        ),
        ("let through by a remembered browser, a trusted network or a deferral", None),
    )
    texts = []
    for label, age in cases:
        decision = decide(access, mode, Level.VERIFIED, reauthenticate_after=bound, factor_age=age)
        texts.append(f"  {label}: {_decision_text(decision)}")
    lines.add(
        "step-up",
        "a verified session is asked for its second factor again (the challenge page, then "
        "back; the session goes on)",
    )
    lines.lines.extend(texts)


def _company_line(
    lines: _Lines, company: Company | None, user: str, groups: Sequence[str] = ()
) -> None:
    if company is None:
        lines.add("company", f"{user} is a member of no company: 2FA always required")
        return
    via = ""
    if not company.is_member(user):  # only through a group
        group = next(g for g in groups if g.lower() in company.groups)
        via = f", a member by the group {group.lower()}"
    lines.add(
        "company",
        f"{company.id} ({company.name}, {company.source}), {company.account_type} account{via}",
    )


def _enforcement(lines: _Lines, company: Company | None, facts: StoreFacts | None) -> bool:
    """Adds the enforcement line; returns whether the company is enforced as far as is known."""
    if company is None:
        lines.add("enforcement", "always, for members of no company: no deferral")
        return True
    said = (
        f"enforce_2fa: {str(company.enforce_2fa).lower()} ({company.source}:{company.enforce_line})"
    )
    if facts is None:
        store = "store not consulted"
        enforced = company.enforce_2fa
    elif facts.enforced_since is None:
        store = "store: not enforced"
        enforced = company.enforce_2fa
    else:
        store = f"store: enforced since {utc(facts.enforced_since)}"
        if not company.enforce_2fa:
            store += " (the ratchet keeps it on over the file)"
        enforced = True
    if enforced:
        effect = "-> enforced: every member must enrol, no deferral"
    else:
        effect = (
            f"-> not enforced: enrolment may be deferred for {format_duration(company.deferral)}"
        )
        if facts is None:
            effect += " (unless the store's ratchet enforces it)"
    lines.add("enforcement", f"{said}; {store}", effect)
    return enforced


def _network(lines: _Lines, company: Company | None, ip: str) -> bool:
    """Adds the trusted-network line; returns whether a trusted-network cookie could apply."""
    address = parse_ip(ip)
    if address is None:
        lines.add("network", f'"{ip}" is not an IP address: not in any trusted network')
        return False
    if company is None:
        lines.add("network", f"{address}: members of no company have no trusted networks")
        return False
    network = trust.network_for(company, address)
    if company.account_type is AccountType.CLIENT:
        where = f"in {network}" if network is not None else "not in a trusted network"
        lines.add(
            "network", f"{address} is {where}, but client accounts never use trusted networks"
        )
        return False
    if network is None:
        networks = ", ".join(str(item) for item in company.trusted_networks.networks)
        if not networks:
            lines.add("network", f"{address}: {company.id} has no trusted networks")
        else:
            lines.add(
                "network", f"{address} is not in any trusted network of {company.id} ({networks})"
            )
        return False
    after = format_duration(company.trusted_networks.reprompt_after)
    lines.add(
        "network",
        f"{address} is in the trusted network {network} of {company.id} (reprompt_after {after})",
    )
    return True


def _remembering(lines: _Lines, company: Company | None) -> bool:
    """Adds the remember-browser line when the company sets `remember_browser`; returns whether
    a remembered browser could apply."""
    if company is None or company.remember_browser is None:
        return False
    span = format_duration(company.remember_browser)
    if company.account_type is AccountType.CLIENT:  # refused by the loader; said all the same
        lines.add("remembering", f"remember_browser {span}, but client accounts never use it")
        return False
    lines.add(
        "remembering",
        f"remember_browser {span}: after a real second factor with the box ticked, that browser "
        f"skips it for {span} (not for a step-up)",
    )
    return True


def _enrolment(lines: _Lines, facts: StoreFacts | None, enforced: bool, now: float) -> float | None:
    """Adds the enrolment line; returns the deferral the gateway would honour."""
    if facts is None:
        lines.add("enrolment", "unknown without the store: both cases below")
        return None
    if facts.methods:
        lines.add("enrolment", f"enrolled: {', '.join(facts.methods)}")
        return None
    text = "none enrolled"
    until = facts.deferred_until
    if until is None:
        lines.add("enrolment", f"{text}; no deferral")
        return None
    if enforced:
        lines.add("enrolment", f"{text}; a deferral until {utc(until)} is ignored: enforced")
        return None
    state = "still running" if now < until else "expired"
    lines.add("enrolment", f"{text}; deferred until {utc(until)} ({state})")
    return until


def _scenarios(
    company: Company | None,
    facts: StoreFacts | None,
    enforced: bool,
    deferred_until: float | None,
    cookie_possible: bool,
    now: float,
    remember_possible: bool = False,
) -> list[tuple[str, Standing]]:
    client = company is not None and company.account_type is AccountType.CLIENT
    base = Standing(enforced=enforced, client_account=client, now=now)
    enrolled_cases = [bool(facts.methods)] if facts is not None else [True, False]
    scenarios: list[tuple[str, Standing]] = []
    for enrolled in enrolled_cases:
        prefix = "" if facts is not None else "enrolled, " if enrolled else "not enrolled, "
        if enrolled:
            standing = Standing(True, enforced, None, False, client, now)
            scenarios.append((f"{prefix}no trusted-network cookie", standing))
            if cookie_possible:
                trusted = Standing(True, enforced, None, True, client, now)
                scenarios.append((f"{prefix}a valid trusted-network cookie", trusted))
            if remember_possible:
                kept = Standing(True, enforced, None, False, client, now, remembered=True)
                scenarios.append((f"{prefix}a remembered browser", kept))
        elif facts is not None:
            standing = Standing(False, enforced, deferred_until, False, client, now)
            deferred_text = ", enrolment deferred" if deferred_until is not None else ""
            scenarios.append((f"none enrolled{deferred_text}", standing))
        elif enforced or company is None:
            scenarios.append((prefix.rstrip(", "), base))
        else:
            scenarios.append((f"{prefix}no deferral", base))
            until = now + company.deferral.total_seconds()
            deferred = Standing(False, enforced, until, False, client, now)
            scenarios.append((f"{prefix}a deferral still running", deferred))
    return scenarios


def _decision_text(decision: Decision) -> str:
    return f"{decision.outcome}: {decision.reason}"


def explain(
    policy: Policy,
    request: Request,
    *,
    applications: Sequence[Application] | None = None,
    app_name: str | None = None,
    facts: StoreFacts | None = None,
    store_note: str = "give -c SETTINGS to consult it",
    now: float = 0.0,
) -> Explanation:
    """How the gateway treats `request` once the user has given a correct password.

    `applications` are the settings' (routed by the URL's host) or None, when `app_name` must
    name the application. `facts` come from the store, or are None when it was not consulted
    (`store_note` says why).
    """
    lines = _Lines()
    user = request.user.strip().lower()
    method = request.method.upper()
    lines.add("request", f"{method} {request.url} from {request.ip} as {user}")
    if facts is None:
        lines.add("store", f"not consulted: {store_note}")
    try:
        host, raw_path = _split_url(request.url)
    except ValueError as exc:
        lines.add("url", f'"{request.url}" is not a URL the gateway can read: {exc}')
        return Explanation(lines.lines, ok=False)
    chosen = _choose_application(lines, host, applications, app_name)
    if chosen is None:
        return Explanation(lines.lines, ok=False)
    app, mode = chosen

    try:
        path = normalise_path(raw_path)
    except BadPath as exc:
        lines.add("path", f'"{raw_path}" is refused: {exc}; the gateway answers 400 Bad Request')
        return Explanation(lines.lines, ok=False)
    shown = path if path == raw_path else f"{raw_path} -> {path}"
    lines.add("path", f"{shown} (normalised; access rules match this)")

    access, rule = policy.access_for(app, method, path)
    if rule is None:
        count = len(policy.access_rules.get(app, ()))
        none = f"{app} has no access rules" if not count else f"none of {app}'s {count} rules"
        lines.add("access rule", f"no rule matched ({none}): two_factor by default")
    else:
        lines.add("access rule", _rule_text(rule))
    if path.startswith("/.gateway/"):
        lines.add("note", "/.gateway/ pages are the gateway's own; only other paths are proxied")

    company = policy.company_for(user, request.groups)
    _company_line(lines, company, user, request.groups)
    enforced = _enforcement(lines, company, facts)
    cookie_possible = _network(lines, company, request.ip)
    remember_possible = _remembering(lines, company)
    deferred_until = _enrolment(lines, facts, enforced, now)

    if access is not Access.TWO_FACTOR:
        decision = decide(access, mode, Level.FIRST_FACTOR, Standing(now=now))
        lines.add("decision", _decision_text(decision))
        return Explanation(lines.lines, ok=True)
    scenarios = _scenarios(
        company, facts, enforced, deferred_until, cookie_possible, now, remember_possible
    )
    lines.add("decision", "after a correct password:")
    for label, standing in scenarios:
        decision = decide(access, mode, Level.FIRST_FACTOR, standing)
        lines.lines.append(f"  {label}: {_decision_text(decision)}")
    _step_up(lines, access, rule, mode)
    return Explanation(lines.lines, ok=True)
