"""The second-factor flow shared by every method: the pending session, its pages, the limit on
wrong codes, deferral, and completion (a verified session, the application's cookies released)."""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import web

from gateway import trust
from gateway.audit import audit
from gateway.decision import Mode
from gateway.durations import human_duration
from gateway.enforcement import is_enforced
from gateway.errors import Forbidden
from gateway.handlers.admin_seen import (
    BROWSER,
    SHARED,
    SHARED_ACCOUNT,
    browser_cookie,
    seen_at_second_factor,
)
from gateway.handlers.attempts import count_failure, forget_failures, refusal
from gateway.handlers.common import (
    CSRF_FIELD,
    attach_csrf_cookie,
    clear_session_cookie,
    company_for,
    context,
    cookie_name,
    csrf_token,
    gateway_url,
    load_session,
    require_csrf,
    runtime,
    see_other,
    set_session_cookie,
)
from gateway.handlers.methods import allowed
from gateway.handlers.standing import enrolment_time
from gateway.keys import LOCKOUT, OTHER_WAYS
from gateway.notices import factor_changed
from gateway.policy.model import AccountType, Company
from gateway.redirects import safe_redirect
from gateway.sessions import DEFERRAL, MAX_FAILURES, Level, Session, cookie_digest
from gateway.store import Store

log = logging.getLogger("gateway.challenge")

# What earns a trusted-network cookie: a second factor actually presented (not a deferral).
REAL_FACTORS = frozenset({"totp", "webauthn", "sms", "voice", "email", "recovery"})


def rd(request: web.Request) -> str:
    return safe_redirect(request.query.get("rd"))


async def pending(request: web.Request) -> Session | web.StreamResponse:
    """The session waiting for its second factor, or where to send a browser that has none."""
    session = await load_session(request)
    rd = safe_redirect(request.query.get("rd"))
    if session is not None and session.level is Level.VERIFIED:
        return see_other(rd)
    if session is None or session.level is not Level.FIRST_FACTOR or not session.user:
        if context(request).mode is Mode.PORTAL:
            return see_other(gateway_url("login", rd))
        raise Forbidden(
            "Your sign-in has expired or was not started.",
            "Go to the start page and sign in again.",
        )
    return session


async def pending_again(request: web.Request) -> Session | web.StreamResponse:
    """`pending`, read from the store anew: after waiting for its turn (attempts.one_at_a_time)
    an answer must see what the answers before it did to the session (its count of wrong
    answers, or its end)."""
    context(request).session_loaded = False
    return await pending(request)


async def may_defer(company: Company, store: Store, user: str) -> bool:
    """ "Remind me later" is for partner staff of companies that do not enforce 2FA; client
    accounts authenticate at every login (the Datto seed)."""
    return company.account_type is AccountType.PARTNER and not await is_enforced(
        company, store, user
    )


async def deferral_offer(request: web.Request, user: str) -> str | None:
    """ "48 hours" when the enrolment page may offer "Remind me in 48 hours", else None."""
    company = company_for(request, user)
    if company is not None and await may_defer(company, runtime(request).store, user):
        return human_duration(company.deferral)
    return None


async def pending_post(
    request: web.Request,
) -> tuple[dict[str, str], Session, str] | web.StreamResponse:
    """A POST from these pages: its form once the CSRF token checks out, and the pending session
    with its user; or where to send a browser that has no pending session."""
    form = await require_csrf(request)
    session = await pending(request)
    if not isinstance(session, Session):
        return session
    assert session.user is not None
    return form, session, session.user


def page(
    request: web.Request, template: str, session: Session, status: int = 200, **extra: Any
) -> web.Response:
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    rt = runtime(request)
    waiting = request.get(LOCKOUT)
    if extra.get("error") and waiting is not None and waiting.is_delay:
        seconds = max(1, math.ceil(waiting.until - rt.clock()))
        plural = "s" if seconds != 1 else ""
        extra["error"] += f" Wait {seconds} second{plural} before the next try."
    response = rt.pages.render(
        template,
        status=status,
        company=company_for(request, session.user),
        user=session.user,
        csrf_field=CSRF_FIELD,
        csrf_token=token,
        rd=safe_redirect(request.query.get("rd")),
        other_ways=request.get(OTHER_WAYS, []),
        shared_login=session.scratch.get(SHARED),
        shared_account=bool(session.scratch.get(SHARED_ACCOUNT)),
        **extra,
    )
    attach_csrf_cookie(response, request, cookies)
    line = browser_cookie(request, session)
    if line is not None:
        response.headers.add("Set-Cookie", line)
    return response


async def too_many_failures(request: web.Request, session: Session) -> bool:
    """Count a wrong answer, in this sign-in and in the store by user and address; past a limit
    the pending session ends, so every further guess costs the password again, and past the
    store's limits nobody may try for a while. A mere delay leaves the sign-in going."""
    rt = runtime(request)
    assert session.user is not None
    method = request.query.get("method") or "second factor"
    lockout = await count_failure(request, session.user, method[:32])
    session.failures += 1
    if lockout is not None:
        request[LOCKOUT] = lockout  # a delay is mentioned on the page, a lockout explained
    if session.failures >= MAX_FAILURES or (lockout is not None and not lockout.is_delay):
        await rt.sessions.end(session)
        log.warning("too many wrong answers for %s: pending session ended", session.user)
        if lockout is not None and lockout.is_delay:
            del request[LOCKOUT]  # the sign-in is over: the page says so, not the delay
        return True
    await rt.sessions.save(session)
    return False


def start_again(request: web.Request) -> web.Response:
    """The sign-in has ended after too many wrong answers: wait (if locked out), then sign in."""
    lockout = request.get(LOCKOUT)
    if lockout is not None:
        response = refusal(request, lockout, "/", "Go to the start page")
    else:
        response = runtime(request).pages.render(
            "error.html",
            status=429,
            title="Too many wrong codes",
            message=(
                f"{MAX_FAILURES} answers in a row were not right, so this sign-in has been stopped."
            ),
            next_step="Sign in again with your password, then enter the code your app shows.",
            link="/",
        )
    clear_session_cookie(response, request)
    return response


async def announce_factor(
    request: web.Request, session: Session, event: str, method: str, change: str, **fields: Any
) -> None:
    """A factor added or removed (or new recovery codes): audited, and the user told by email
    when an address is known. `change` reads like "A passkey was added"."""
    ctx = context(request)
    assert session.user is not None
    audit(
        event,
        method=method,
        user=session.user,
        ip=ctx.client_ip,
        request_id=ctx.request_id,
        **fields,
    )
    await factor_changed(
        runtime(request).notifier,
        session.user,
        change,
        session.identity.get("email"),
        site_name(request, session.user),
    )


async def phone_pending(store: Store, user: str) -> bool:
    """An admin set a new phone number for `user` that they have not confirmed yet."""
    record = await store.get_user(user)
    return record is not None and bool(record.facts.get("pending_phone"))


def site_name(request: web.Request, user: str) -> str:
    """What the user knows this site as: their company's branding, else the application."""
    company = company_for(request, user)
    return company.branding.name if company is not None else context(request).application.name


async def complete(
    request: web.Request, session: Session, target: str, via: str, first_enrolment: bool = False
) -> web.StreamResponse:
    """The second factor is satisfied (`via` a code, a trusted-network cookie or a deferral): a
    new verified session, the application's held cookies released to the browser and bound to
    it, and, after a real second factor from a trusted network, the trusted-network cookie."""
    rt = runtime(request)
    ctx = context(request)
    withheld = list(session.withheld)
    # (a re-authentication keeps the cookies bound at the sign-in; a new sign-in has none)
    session.bound |= {name: cookie_digest(value) for name, value in session.jar.items()}
    session.jar = {}
    session.withheld = []
    session.second_factor = via
    browser = browser_cookie(request, session)
    session.scratch.pop(BROWSER, None)
    company = company_for(request, session.user)
    if company is not None:
        session.idle_timeout = company.session.idle_timeout.total_seconds()
        session.lifetime = company.session.lifetime.total_seconds()
    session = await rt.sessions.promote(session, Level.VERIFIED)
    if via in REAL_FACTORS and session.user:
        await forget_failures(request, session.user)
        await seen_at_second_factor(request, session, via)
    audit(
        "second_factor_ok",
        via=via,
        user=session.user,
        company=company.id if company else None,
        ip=ctx.client_ip,
        request_id=ctx.request_id,
    )
    target = safe_redirect(target)
    if first_enrolment and "recovery" in allowed(company, rt):
        target = gateway_url("recovery", target)  # the new recovery codes, shown once
    if via in REAL_FACTORS and session.user and await phone_pending(rt.store, session.user):
        target = gateway_url("phone/confirm", target)  # a number an admin set, to confirm
    response = see_other(target)
    for line in withheld:
        response.headers.add("Set-Cookie", line)
    set_session_cookie(response, request, session)
    if browser is not None:
        response.headers.add("Set-Cookie", browser)
    network = trust.network_for(company, ctx.client_ip)
    if (
        via in REAL_FACTORS
        and network is not None
        and company is not None
        and company.account_type is AccountType.PARTNER
        and session.user
    ):
        enrolled_at = await enrolment_time(rt.store, session.user)
        value = trust.issue(
            rt.secrets.signing_keys, session.user, company, network, rt.clock(), enrolled_at
        )
        max_age = int(company.trusted_networks.reprompt_after.total_seconds())
        response.headers.add(
            "Set-Cookie",
            f"{cookie_name(ctx, trust.COOKIE)}={value}; Path=/; Max-Age={max_age}; HttpOnly; "
            f"SameSite=Lax" + ("; Secure" if ctx.secure else ""),
        )
    return response


async def defer(request: web.Request) -> web.StreamResponse:
    """ "Remind me later": allowed only while the company does not enforce 2FA."""
    posted = await pending_post(request)
    if not isinstance(posted, tuple):
        return posted
    _form, session, user = posted
    rt = runtime(request)
    company = company_for(request, user)
    if company is None or not await may_defer(company, rt.store, user):
        raise Forbidden(
            "Your company requires two-step sign-in, so it cannot be put off.",
            "Go back and set it up now.",
        )
    if await rt.store.list_methods(user):
        return see_other(gateway_url("challenge", rd(request)))
    now = rt.clock()
    until = now + company.deferral.total_seconds()
    await rt.store.put_deferral(user, company.id, now, until)
    audit(
        "deferral",
        user=user,
        company=company.id,
        until=until,
        ip=context(request).client_ip,
        request_id=context(request).request_id,
    )
    return await complete(request, session, safe_redirect(request.query.get("rd")), via=DEFERRAL)
