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
from gateway.identity.ldap import Directory, DirectoryUnavailable, Found
from gateway.identity.portal import PortalUser, UsersFile
from gateway.offload import off_loop
from gateway.redirects import safe_redirect
from gateway.regulation import user_key
from gateway.sessions import Level
from gateway.signin.attempts import count_failure, one_at_a_time, wait_for

log = logging.getLogger("gateway.login")

WRONG_PASSWORD = N_("The user name or password is not right. Check both and try again.")


async def _check(
    request: web.Request,
    users: UsersFile | Directory,
    username: str,
    password: str,
    found: Found | None,
) -> PortalUser | None:
    """The first factor: argon2 off the loop, or the directory in its own threads. A directory
    that cannot answer fails closed: the 503 page, nobody let in, nothing counted."""
    if isinstance(users, UsersFile):
        return await off_loop(users.check, username, password)
    try:
        return await users.check(username, password, found)
    except DirectoryUnavailable as exc:
        raise _down(request, exc) from None


async def _find(
    request: web.Request, users: UsersFile | Directory, username: str, password: str
) -> tuple[list[str], Found | None]:
    """The names a sign-in as `username` waits and is counted under: the person the directory
    names (its search-then-bind search, before the password is checked) first, then the name
    as typed; so that a filter taking a uid or an address does not give a locked person a
    fresh count under the other spelling, and an unknown name is counted all the same. The
    users file and a direct bind (no search before the bind) count the name as typed. A name
    or address held already is not searched for (the wait under the lock refuses it)."""
    typed = username.lower()
    if isinstance(users, UsersFile) or not password:  # an empty one never reaches the directory
        return [typed], None
    if await wait_for(visit(request), typed) is not None:
        return [typed], None
    try:
        found = await users.find(username)
    except DirectoryUnavailable as exc:
        raise _down(request, exc) from None
    names = [found.user] if found is not None and found.user else []
    return [*names, *([typed] if user_key(typed) not in map(user_key, names) else [])], found


def _down(request: web.Request, exc: DirectoryUnavailable) -> DirectoryDown:
    runtime(request).log_repeats.log(logging.ERROR, "ldap", "directory unavailable: %s", exc)
    return DirectoryDown()


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
    password = form.get("password", "")
    names, found = await _find(request, users, username, password)
    counted_as = names[0]  # the person when the directory named one, else the name as typed
    back = request.path_qs
    async with one_at_a_time(visit(request), counted_as, per_address=True) as mine:  # unknown too
        if not mine:
            return busy(request, back, N_("Back to the sign-in page"))
        for name in names:
            waiting = await wait_for(visit(request), name)
            if waiting is not None:
                log.warning(
                    "sign-in refused while waiting: %r from %s", username[:64], ctx.client_ip
                )
                return refusal(request, waiting, back, N_("Back to the sign-in page"))
        user = await _check(request, users, username, password, found)
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
