"""The language switcher at the foot of every page: a plain link (no script, no form) that
remembers the person's choice in a cookie and goes back to the page. It changes nothing but how
pages read, so it needs no CSRF token; an unknown language clears the choice."""

from __future__ import annotations

from aiohttp import web

from gateway import i18n
from gateway.cookies import expire_cookie
from gateway.handlers.shared.request import context, cookie_name, cookie_value
from gateway.redirects import safe_redirect

PATH = "/.gateway/language"
_YEAR = 365 * 86400


async def switch(request: web.Request) -> web.Response:
    chosen = i18n.from_cookie(request.query.get("lang"))
    ctx = context(request)
    name = cookie_name(ctx, i18n.COOKIE)  # __Host-gateway_lang over TLS, as the others
    secure = "; Secure" if ctx.secure else ""
    if chosen is not None:
        line = f"{name}={chosen}; Path=/; Max-Age={_YEAR}; SameSite=Lax; HttpOnly"
    else:
        line = f"{name}=; Path=/; Max-Age=0; SameSite=Lax; HttpOnly"
    target = safe_redirect(request.query.get("rd"))
    response = web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})
    response.headers.add("Set-Cookie", line + secure)
    if name != i18n.COOKIE and cookie_value(ctx, i18n.COOKIE) is not None:
        # the plain name an earlier version set over TLS: no longer read, so it goes
        response.headers.add("Set-Cookie", expire_cookie(i18n.COOKIE, ctx.secure))
    return response
