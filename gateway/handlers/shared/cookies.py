"""The gateway's own cookies: the session (read from the store once per request, set, cleared)
and the browser's id (gateway.signin.browsers)."""

from __future__ import annotations

from aiohttp import web

from gateway.cookies import expire_cookie
from gateway.handlers.shared.request import context, cookie_name, cookie_value, runtime
from gateway.sessions import Session
from gateway.signin.browsers import BROWSER_COOKIE, BROWSER_MAX_AGE, browser_to_give


async def load_session(request: web.Request, recent: bool = False) -> Session | None:
    """The gateway session of this request, read from the store once. `recent`: a verified
    session read in the last seconds will do (the forwarding paths; see SessionManager.load)."""
    ctx = context(request)
    if not ctx.session_loaded:
        rt = runtime(request)
        sid = cookie_value(ctx, cookie_name(ctx, rt.settings.session_cookie))
        ctx.session = await rt.sessions.load(sid, ctx.application.name, recent=recent)
        ctx.session_loaded = True
    return ctx.session


def session_cookie_line(request: web.Request, session: Session) -> str:
    """The Set-Cookie line for the gateway session: HttpOnly, SameSite=Lax, Secure over TLS."""
    ctx = context(request)
    name = cookie_name(ctx, runtime(request).settings.session_cookie)
    return f"{name}={session.id}; Path=/; HttpOnly; SameSite=Lax" + (
        "; Secure" if ctx.secure else ""
    )


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, session: Session
) -> None:
    response.headers.add("Set-Cookie", session_cookie_line(request, session))
    context(request).session = session


def expire_session_cookie_line(request: web.Request) -> str:
    ctx = context(request)
    return expire_cookie(cookie_name(ctx, runtime(request).settings.session_cookie), ctx.secure)


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.headers.add("Set-Cookie", expire_session_cookie_line(request))


def browser_cookie(request: web.Request, session: Session) -> str | None:
    """The Set-Cookie line that gives this browser the id it was given at the first factor."""
    browser = browser_to_give(session)
    return browser_id_line(request, browser) if browser is not None else None


def browser_id_line(request: web.Request, browser: str) -> str:
    """The Set-Cookie line that gives this browser its id (gateway.signin.browsers)."""
    ctx = context(request)
    name = cookie_name(ctx, BROWSER_COOKIE)
    return f"{name}={browser}; Path=/; Max-Age={BROWSER_MAX_AGE}; HttpOnly; SameSite=Lax" + (
        "; Secure" if ctx.secure else ""
    )
