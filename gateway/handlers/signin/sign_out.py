"""/.gateway/logout: the session ends on the server, and the browser's cookies are cleared."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.audit import audit
from gateway.cookies import expire_cookie
from gateway.handlers.shared.cookies import clear_session_cookie, load_session
from gateway.handlers.shared.csrf import CSRF_FIELD, attach_csrf_cookie, csrf_token, require_csrf
from gateway.handlers.shared.own_methods import ACCOUNT
from gateway.handlers.shared.redirects import see_other
from gateway.handlers.shared.request import company_for, context, runtime
from gateway.i18n import N_
from gateway.redirects import safe_redirect
from gateway.sessions import Level

log = logging.getLogger("gateway.logout")


async def logout_get(request: web.Request) -> web.StreamResponse:
    session = await load_session(request)
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    company = company_for(request, session.user if session else None)
    links = []
    if session is not None and session.level is Level.VERIFIED:
        links.append({"url": ACCOUNT, "label": N_("Your two-step sign-in")})
    response = runtime(request).pages.render(
        "logout.html",
        company=company,
        account_links=links,
        signed_in=session is not None and session.user is not None,
        user=session.user if session else None,
        csrf_field=CSRF_FIELD,
        csrf_token=token,
        rd=safe_redirect(request.query.get("rd")),
    )
    attach_csrf_cookie(response, request, cookies)
    return response


async def logout_post(request: web.Request) -> web.StreamResponse:
    await require_csrf(request)
    ctx = context(request)
    session = await load_session(request)
    if session is not None:
        ended = await runtime(request).sessions.sign_out(session)
        log.info("signed out %s from %s (%d sessions ended)", session.user, ctx.client_ip, ended)
        if session.user:
            audit("sign_out", user=session.user, sessions_ended=ended)
    response = see_other(safe_redirect(request.query.get("rd")))
    clear_session_cookie(response, request)
    if ctx.application.intercept is not None:
        scopes = session.scopes if session is not None else {}
        patterns = ctx.application.intercept.session_cookies.patterns
        known = [name for name in patterns if "*" not in name and "?" not in name]
        names = dict.fromkeys([*known, *(session.bound if session is not None else {}), *scopes])
        for name in names:
            path, domain = scopes.get(name) or ["/", None]
            response.headers.add("Set-Cookie", expire_cookie(name, ctx.secure, path or "/", domain))
    return response
