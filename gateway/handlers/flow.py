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
from gateway.errors import Forbidden
from gateway.handlers.attempts import refusal
from gateway.handlers.common import (
    CSRF_FIELD,
    attach_csrf_cookie,
    browser_cookie,
    browser_id_line,
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
    visit,
)
from gateway.handlers.methods import allowed
from gateway.keys import LOCKOUT, OTHER_WAYS
from gateway.notices import factor_changed
from gateway.redirects import safe_redirect
from gateway.sessions import DEFERRAL, MAX_FAILURES, Level, Session
from gateway.signin import deferral, steps
from gateway.signin.attempts import count_failure
from gateway.signin.browsers import SHARED, SHARED_ACCOUNT, seen_at_first_factor
from gateway.signin.completion import complete as completed
from gateway.signin.standing import standing_of

log = logging.getLogger("gateway.challenge")


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


async def deferral_offer(request: web.Request, user: str) -> str | None:
    """ "48 hours" when the enrolment page may offer "Remind me in 48 hours", else None."""
    company = company_for(request, user)
    if company is not None and await deferral.may_defer(company, runtime(request).store, user):
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
    store's limits nobody may try for a while. A mere delay leaves the sign-in going (and is
    mentioned on the page). The rule: gateway.signin.steps."""
    rt = runtime(request)
    assert session.user is not None
    method = request.query.get("method") or "second factor"
    lockout = await count_failure(visit(request), session.user, method[:32])
    state = steps.SignIn(steps.Stage.ASKED, session.failures)
    state, effects = steps.step(state, steps.WrongAnswer(lockout))
    session.failures = state.failures
    for effect in effects:  # a delay is mentioned on the page, a lockout explained
        if isinstance(effect, steps.Wait):
            request[LOCKOUT] = effect.lockout
    if state.stage is steps.Stage.ENDED:
        await rt.sessions.end(session)
        log.warning("too many wrong answers for %s: pending session ended", session.user)
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


def site_name(request: web.Request, user: str) -> str:
    """What the user knows this site as: their company's branding, else the application."""
    company = company_for(request, user)
    return company.branding.name if company is not None else context(request).application.name


async def complete(
    request: web.Request, session: Session, target: str, via: str, first_enrolment: bool = False
) -> web.StreamResponse:
    """The second factor is satisfied (`via` a code, a trusted-network cookie or a deferral):
    gateway.signin.completion does it; this sends the new session's cookie, the application's
    held cookies, the browser's id and a trusted-network cookie, and goes on to `target`."""
    rt = runtime(request)
    ctx = context(request)
    company = company_for(request, session.user)
    done = await completed(
        visit(request),
        session,
        via,
        first_enrolment=first_enrolment,
        recovery_offered="recovery" in allowed(company, rt),
    )
    target = safe_redirect(target)
    for detour in done.detours:
        target = gateway_url(detour, target)
    response = see_other(target)
    for line in done.release:
        response.headers.add("Set-Cookie", line)
    set_session_cookie(response, request, done.session)
    if done.browser_id is not None:
        response.headers.add("Set-Cookie", browser_id_line(request, done.browser_id))
    if done.trust is not None:
        response.headers.add(
            "Set-Cookie",
            f"{cookie_name(ctx, trust.COOKIE)}={done.trust.value}; Path=/; "
            f"Max-Age={done.trust.max_age}; HttpOnly; SameSite=Lax"
            + ("; Secure" if ctx.secure else ""),
        )
    return response


async def after_first_factor(
    request: web.Request, session: Session, target: str
) -> web.StreamResponse:
    """The next step once the password is known good: a challenge, an enrolment, or, with a
    trusted-network cookie or a live deferral, straight on to `target` (gateway.signin.steps)."""
    here = visit(request)
    standing = await standing_of(here, session.user or "")
    await seen_at_first_factor(here, session, standing.enrolled)
    start = steps.SignIn(steps.Stage.PASSWORD_RIGHT)
    _state, effects = steps.step(start, steps.PasswordRight(standing))
    for effect in effects:
        if isinstance(effect, steps.Complete):
            return await complete(request, session, target, via=effect.via)
    page = next(effect.page for effect in effects if isinstance(effect, steps.Ask))
    return see_other(gateway_url(page, target))


async def defer(request: web.Request) -> web.StreamResponse:
    """ "Remind me later": allowed only while the company does not enforce 2FA."""
    posted = await pending_post(request)
    if not isinstance(posted, tuple):
        return posted
    _form, session, user = posted
    rt = runtime(request)
    company = company_for(request, user)
    if company is None or not await deferral.may_defer(company, rt.store, user):
        raise Forbidden(
            "Your company requires two-step sign-in, so it cannot be put off.",
            "Go back and set it up now.",
        )
    if await rt.store.list_methods(user):
        return see_other(gateway_url("challenge", rd(request)))
    await deferral.grant(visit(request), user, company)
    return await complete(request, session, safe_redirect(request.query.get("rd")), via=DEFERRAL)
