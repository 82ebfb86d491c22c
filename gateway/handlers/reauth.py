"""Changing how one signs in (adding or removing a passkey, new recovery codes) needs a second
factor presented in this session within the last REAUTH_AFTER seconds, as admin actions do: a
session verified by a trusted-network cookie, a deferral or an old code is first sent to
"Confirm it is you", which steps it down to the first factor and on to the challenge (the class
of Keycloak CVE-2026-3429, where a password-only session replaced the victim's factor)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Forbidden
from gateway.handlers.admin_access import NotSignedIn, fresh, signed_in, to_the_challenge
from gateway.handlers.common import (
    CSRF_FIELD,
    attach_csrf_cookie,
    csrf_token,
    gateway_url,
    require_csrf,
    runtime,
    see_other,
)
from gateway.redirects import safe_redirect
from gateway.sessions import Session

PAGE = "reauth"


def stale(request: web.Request, session: Session) -> web.StreamResponse | None:
    """None when `session` may change its factors now; else where to go: a GET goes to
    "Confirm it is you" and comes back; a POST is refused (its form is sent again after)."""
    if fresh(request, session):
        return None
    back = request.path_qs if request.method == "GET" else request.path
    if request.method == "GET":
        return see_other(gateway_url(PAGE, back))
    raise Forbidden(
        "Changing how you sign in needs a second step made in the last 15 minutes.",
        "Go back to the page, confirm it is you, and try again.",
    )


async def reauth_get(request: web.Request) -> web.StreamResponse:
    session = await _verified(request)
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    response = runtime(request).pages.render(
        "reauth.html",
        user=session.user,
        rd=safe_redirect(request.query.get("rd")),
        csrf_field=CSRF_FIELD,
        csrf_token=token,
    )
    attach_csrf_cookie(response, request, cookies)
    return response


async def reauth_post(request: web.Request) -> web.StreamResponse:
    await require_csrf(request)
    session = await _verified(request)
    return await to_the_challenge(request, session, safe_redirect(request.query.get("rd")))


async def _verified(request: web.Request) -> Session:
    try:
        return await signed_in(request)
    except NotSignedIn:
        raise Forbidden("You are not signed in.", "Sign in, then try again.") from None
