"""The end of a sign-in, over HTTP: after the password, the next step (a challenge, an
enrolment, or straight on); after the second factor, the verified session's cookies, the
application's held cookies, the browser's id and a trusted-network cookie. The rules:
gateway.signin.steps and gateway.signin.completion."""

from __future__ import annotations

from aiohttp import web

from gateway import trust
from gateway.handlers.shared.cookies import browser_id_line, set_session_cookie
from gateway.handlers.shared.methods import REGISTRY, allowed
from gateway.handlers.shared.own_methods import ACCOUNT_DONE
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import company_for, context, cookie_name, runtime, visit
from gateway.redirects import safe_redirect
from gateway.sessions import Level, Session
from gateway.signin import remember as remembering
from gateway.signin import steps
from gateway.signin.browsers import seen_at_first_factor
from gateway.signin.completion import complete as completed
from gateway.signin.standing import standing_of

# set by the challenge POST (handlers/signin/second_factor.py): the box "Remember this browser"
# was ticked on the form
REMEMBER_TICKED: web.RequestKey[bool] = web.RequestKey("remember_ticked")


async def complete(
    request: web.Request, session: Session, target: str, via: str, first_enrolment: bool = False
) -> web.StreamResponse:
    """The second factor is satisfied (`via` a code, a trusted-network cookie or a deferral):
    gateway.signin.completion does it; this sends the new session's cookie, the application's
    held cookies, the browser's id and a trusted-network cookie, and goes on to `target`.
    A signed-in person who added a method (`via` it) is not signing in: see `added`."""
    if session.level is Level.VERIFIED:
        return await added(request, session, target, via)
    rt = runtime(request)
    ctx = context(request)
    company = company_for(request, session.user)
    done = await completed(
        visit(request),
        session,
        via,
        first_enrolment=first_enrolment,
        recovery_offered="recovery" in allowed(company, rt),
        user_agent=request.headers.get("User-Agent"),
        remember=request.get(REMEMBER_TICKED, False),
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
    if done.remember is not None:
        response.headers.add(
            "Set-Cookie",
            f"{cookie_name(ctx, remembering.COOKIE)}={done.remember.value}; Path=/; "
            f"Max-Age={done.remember.max_age}; HttpOnly; SameSite=Lax"
            + ("; Secure" if ctx.secure else ""),
        )
    return response


async def added(
    request: web.Request, session: Session, target: str, via: str
) -> web.StreamResponse:
    """A signed-in person added `via` as another way to sign in (its enrolment already stored
    and announced). It is not a sign-in: the session keeps its age, its last second factor and
    when it was presented (a method one has just added does not renew the 15 minutes in which
    one may change methods), and no trusted-network cookie or sign-in record comes of it."""
    session.failures = 0
    session.pending_totp = None
    pages = REGISTRY.get(via)
    label = pages.label if pages is not None else via
    session.scratch[ACCOUNT_DONE] = f"{label} was added."
    await runtime(request).sessions.save(session)
    return see_other(safe_redirect(target))


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
