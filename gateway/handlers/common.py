"""What the gateway's handlers share: the session cookie, CSRF, redirects, the user's company."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway import csrf, trust
from gateway.context import RequestContext
from gateway.cookies import expire_cookie
from gateway.errors import BadRequest
from gateway.keys import CONTEXT, RUNTIME, VISIT
from gateway.policy.model import Company
from gateway.runtime import Runtime
from gateway.sessions import Session
from gateway.signin.browsers import BROWSER_COOKIE, BROWSER_MAX_AGE, browser_to_give
from gateway.signin.visit import Visit, browser_id_of

CSRF_COOKIE = "gateway_csrf"
CSRF_FIELD = "csrf_token"


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def context(request: web.Request) -> RequestContext:
    return request[CONTEXT]


def cookie_name(ctx: RequestContext, base: str) -> str:
    """`__Host-` pins the cookie to this exact host over TLS; plain HTTP cannot use it."""
    return f"__Host-{base}" if ctx.secure else base


def cookie_value(ctx: RequestContext, name: str) -> str | None:
    for key, value in ctx.cookies:
        if key == name:
            return value
    return None


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


def csrf_token(request: web.Request, response_cookies: dict[str, str]) -> str:
    """The token for a form on this page; sets the CSRF cookie when the browser has none."""
    ctx = context(request)
    name = cookie_name(ctx, CSRF_COOKIE)
    value = cookie_value(ctx, name)
    if not value or len(value) > 128:
        value = csrf.new_cookie_value()
        response_cookies[name] = value
    return csrf.token_for(value, runtime(request).secrets.signing_keys)


def attach_csrf_cookie(
    response: web.StreamResponse, request: web.Request, response_cookies: dict[str, str]
) -> None:
    ctx = context(request)
    for name, value in response_cookies.items():
        response.set_cookie(name, value, path="/", httponly=True, secure=ctx.secure, samesite="Lax")


async def require_csrf(request: web.Request) -> dict[str, str]:
    """The posted form, once its CSRF token checks out."""
    ctx = context(request)
    try:
        form = await request.post()
    except (ValueError, LookupError, UnicodeDecodeError, HttpProcessingError) as exc:
        raise BadRequest(
            "This form could not be read.", "Go back, reload the page and try again."
        ) from exc
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    cookie = cookie_value(ctx, cookie_name(ctx, CSRF_COOKIE))
    if not csrf.valid(cookie, fields.get(CSRF_FIELD), runtime(request).secrets.signing_keys):
        raise BadRequest(
            "This form has expired or did not come from this site.",
            "Go back, reload the page and try again.",
        )
    return fields


def company_for(request: web.Request, user: str | None) -> Company | None:
    return context(request).policy.company_for(user) if user else None


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def gateway_url(page: str, rd: str | None) -> str:
    return f"/.gateway/{page}" + (f"?{urlencode({'rd': rd})}" if rd else "")


def visit(request: web.Request) -> Visit:
    """What this request brings to the sign-in core (gateway.signin), gathered once."""
    found = request.get(VISIT)
    if found is None:
        rt = runtime(request)
        ctx = context(request)
        found = request[VISIT] = Visit(
            store=rt.store,
            sessions=rt.sessions,
            clock=rt.clock,
            policy=ctx.policy,
            client_ip=ctx.client_ip,
            browser_id=browser_id_of(cookie_value(ctx, cookie_name(ctx, BROWSER_COOKIE))),
            trust_cookie=cookie_value(ctx, cookie_name(ctx, trust.COOKIE)),
            signing_keys=rt.secrets.signing_keys,
            metrics=rt.metrics,
            request_id=ctx.request_id,
            application=ctx.application.name,
        )
    return found


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
