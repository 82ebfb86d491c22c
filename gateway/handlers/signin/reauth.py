"""/.gateway/reauth, "Confirm it is you": a verified session whose second factor is not recent
enough to change how one signs in (shared/factor_changes.stale sends it here) steps down to the
first factor and goes through the challenge again, then back."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Forbidden
from gateway.handlers.shared.csrf import CSRF_FIELD, attach_csrf_cookie, csrf_token, require_csrf
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.shared.verified import NotSignedIn, signed_in, to_the_challenge
from gateway.i18n import N_
from gateway.redirects import safe_redirect
from gateway.sessions import Session


async def reauth_get(request: web.Request) -> web.StreamResponse:
    session = await _verified(request)
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    response = runtime(request).pages.render(
        "reauth.html",
        company=context(request).known_company(),
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
        raise Forbidden(N_("You are not signed in."), N_("Sign in, then try again.")) from None
