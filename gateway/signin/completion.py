"""A sign-in completed: the second factor satisfied (a code, a passkey, a trusted-network cookie,
a remembered browser or a deferral). The session becomes verified, the application's cookies
held since the login are released and bound to it, and, after a real second factor from a
company's trusted network, a trusted-network cookie is issued; after a real second factor with
"Remember this browser" ticked, where the company allows it, a remembered-browser cookie. What
the handler must send comes back as a `Completion`."""

from __future__ import annotations

from dataclasses import dataclass

from gateway import trust
from gateway.audit import audit
from gateway.policy.model import AccountType
from gateway.sessions import USER_AGENT_MAX, Level, Session, cookie_digest
from gateway.signin import remember as remembering
from gateway.signin.attempts import forget_failures
from gateway.signin.browsers import BROWSER, browser_to_give, seen_at_second_factor
from gateway.signin.standing import enrolment_time
from gateway.signin.visit import Visit
from gateway.store import Store

# What earns a trusted-network cookie: a second factor actually presented (not a deferral, a
# trusted network or a remembered browser); also what may remember a browser.
REAL_FACTORS = frozenset({"totp", "webauthn", "sms", "voice", "email", "recovery"})


@dataclass(frozen=True)
class TrustCookie:
    value: str
    max_age: int


@dataclass(frozen=True)
class Completion:
    session: Session  # the new verified session
    release: tuple[str, ...]  # the application's Set-Cookie lines held since its login
    browser_id: str | None  # an id to give this browser
    trust: TrustCookie | None  # a trusted-network cookie to set
    # gateway pages to pass through on the way, innermost first: the new recovery codes
    # (shown once), then a phone number an admin set, to confirm
    detours: tuple[str, ...]
    remember: remembering.RememberCookie | None = None  # a remembered-browser cookie to set


async def complete(
    visit: Visit,
    session: Session,
    via: str,
    *,
    first_enrolment: bool = False,
    recovery_offered: bool = False,
    user_agent: str | None = None,
    remember: bool = False,
) -> Completion:
    """`remember`: the person ticked "Remember this browser" (honoured after a real second
    factor only, when the company allows it: gateway.signin.remember)."""
    withheld = tuple(session.withheld)
    # (a re-authentication keeps the cookies bound at the sign-in; a new sign-in has none)
    session.bound |= {name: cookie_digest(value) for name, value in session.jar.items()}
    session.jar = {}
    session.withheld = []
    session.second_factor = via
    session.failures = 0  # the sign-in's wrong answers do not follow into the verified session
    session.pending_totp = None  # a secret shown before the second factor is not offered later
    browser = browser_to_give(session)
    session.scratch.pop(BROWSER, None)
    company = visit.company_for(session.user)
    if company is not None:
        session.idle_timeout = company.session.idle_timeout.total_seconds()
        session.lifetime = company.session.lifetime.total_seconds()
    # where this sign-in came from, for the sessions page
    session.user_agent = user_agent[:USER_AGENT_MAX] if user_agent else None
    session.address = visit.address
    session = await visit.sessions.promote(session, Level.VERIFIED)
    user = session.user
    real = via in REAL_FACTORS and bool(user)
    if real:
        assert user is not None
        await forget_failures(visit, user)
        await seen_at_second_factor(visit, session, via)
    audit(
        "second_factor_ok",
        via=via,
        user=user,
        company=company.id if company else None,
        ip=visit.client_ip,
        request_id=visit.request_id,
    )
    detours = []
    if first_enrolment and recovery_offered:
        detours.append("recovery")
    if real and user and await phone_pending(visit.store, user):
        detours.append("phone/confirm")
    cookie = None
    network = trust.network_for(company, visit.client_ip)
    partner = company is not None and company.account_type is AccountType.PARTNER
    if real and user and network is not None and company is not None and partner:
        enrolled_at = await enrolment_time(visit.store, user)
        value = trust.issue(visit.signing_keys, user, company, network, visit.clock(), enrolled_at)
        max_age = int(company.trusted_networks.reprompt_after.total_seconds())
        cookie = TrustCookie(value, max_age)
    remembered = None
    if real and user and remember and company is not None:
        remembered = await remembering.remember(visit, user, company, user_agent)
        if remembered is not None and not await visit.sessions.stored(session):
            # the session was ended while it was being completed (a sign-out everywhere, an
            # admin or operator ending the sessions): those forget the user's browsers, maybe
            # before this one was recorded, so it is forgotten here and no cookie is sent
            await visit.store.forget_browser(user, remembered.handle)
            audit("browsers_forgotten", user=user, reason="session_ended", forgotten=1)
            remembered = None
    return Completion(session, withheld, browser, cookie, tuple(detours), remembered)


async def phone_pending(store: Store, user: str) -> bool:
    """An admin set a new phone number for `user` that they have not confirmed yet."""
    record = await store.get_user(user)
    return record is not None and bool(record.facts.get("pending_phone"))
