"""CSRF for the gateway's forms: the token a page carries, its cookie, and the check of a POST."""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway import csrf
from gateway.errors import BadRequest
from gateway.handlers.shared.request import context, cookie_name, cookie_value, runtime
from gateway.i18n import N_

CSRF_COOKIE = "gateway_csrf"
CSRF_FIELD = "csrf_token"


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
            N_("This form could not be read."), N_("Go back, reload the page and try again.")
        ) from exc
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    cookie = cookie_value(ctx, cookie_name(ctx, CSRF_COOKIE))
    if not csrf.valid(cookie, fields.get(CSRF_FIELD), runtime(request).secrets.signing_keys):
        raise BadRequest(
            N_("This form has expired or did not come from this site."),
            N_("Go back, reload the page and try again."),
        )
    return fields
