"""/.gateway/login, portal mode: the gateway's own login page (the first factor)."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.audit import audit
from gateway.errors import DirectoryDown, NotFound
from gateway.handlers.shared.attempts import busy, refusal
from gateway.handlers.shared.completion import after_first_factor
from gateway.handlers.shared.cookies import load_session, session_cookie_line
from gateway.handlers.shared.csrf import CSRF_FIELD, attach_csrf_cookie, csrf_token, require_csrf
from gateway.handlers.shared.redirects import see_other
from gateway.handlers.shared.request import context, runtime, visit
from gateway.i18n import N_
from gateway.identity.ldap import Directory, DirectoryUnavailable
from gateway.identity.portal import PortalUser, UsersFile
from gateway.offload import off_loop
from gateway.redirects import safe_redirect
from gateway.sessions import Level
from gateway.signin.attempts import count_failure, one_at_a_time, wait_for

log = logging.getLogger("gateway.login")

WRONG_PASSWORD = N_("The user name or password is not right. Check both and try again.")


async def _check(
    request: web.Request, users: UsersFile | Directory, username: str, password: str
) -> PortalUser | None:
    """The first factor: argon2 off the loop, or the directory in its own threads. A directory
    that cannot answer fails closed: the 503 page, nobody let in, nothing counted."""
    if isinstance(users, UsersFile):
        return await off_loop(users.check, username, password)
    try:
        return await users.check(username, password)
    except DirectoryUnavailable as exc:
        rt = runtime(request)
        rt.log_repeats.log(logging.ERROR, "ldap", "directory unavailable: %s", exc)
        raise DirectoryDown() from None


def _users(request: web.Request) -> UsersFile | Directory:
    users = runtime(request).users.get(context(request).application.name)
    if users is None:
        raise NotFound(N_("This application does not use the gateway's login page."))
    return users


def _login_page(
    request: web.Request, error: str | None, username: str, status: int
) -> web.Response:
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    response = runtime(request).pages.render(
        "login.html",
        company=context(request).known_company(),
        status=status,
        error=error,
        username=username,
        csrf_field=CSRF_FIELD,
        csrf_token=token,
        rd=safe_redirect(request.query.get("rd")),
    )
    attach_csrf_cookie(response, request, cookies)
    return response


async def login_get(request: web.Request) -> web.StreamResponse:
    _users(request)
    session = await load_session(request)
    if session is not None and session.level is Level.VERIFIED:
        return see_other(safe_redirect(request.query.get("rd")))
    return _login_page(request, None, "", 200)


async def login_post(request: web.Request) -> web.StreamResponse:
    users = _users(request)
    form = await require_csrf(request)
    rt = runtime(request)
    ctx = context(request)
    username = form.get("username", "").strip()
    counted_as = username.lower()
    back = request.path_qs
    async with one_at_a_time(visit(request), counted_as, per_address=True) as mine:  # unknown too
        if not mine:
            return busy(request, back, N_("Back to the sign-in page"))
        waiting = await wait_for(visit(request), counted_as)
        if waiting is not None:
            log.warning("sign-in refused while waiting: %r from %s", username[:64], ctx.client_ip)
            return refusal(request, waiting, back, N_("Back to the sign-in page"))
        user = await _check(request, users, username, form.get("password", ""))
        if user is None:
            log.warning("first factor refused for %r from %s", username[:64], ctx.client_ip)
            await count_failure(visit(request), counted_as, "password")
            return _login_page(request, WRONG_PASSWORD, username[:320], 401)
    session = await load_session(request)
    if session is not None:
        await rt.sessions.end(session)
    session = rt.sessions.new(ctx.application.name)
    session.identity = {"email": user.email, "name": user.display_name, "groups": list(user.groups)}
    session = await rt.sessions.promote(session, Level.FIRST_FACTOR, user.name)
    ctx.session, ctx.session_loaded = session, True  # its groups place the user (members by group)
    log.info("first factor accepted for %s from %s", user.name, ctx.client_ip)
    audit("first_factor_ok", via="portal", user=user.name)
    response = await after_first_factor(request, session, safe_redirect(request.query.get("rd")))
    if session.level is Level.FIRST_FACTOR:  # not already completed (and re-cookied) just now
        response.headers.add("Set-Cookie", session_cookie_line(request, session))
    return response
