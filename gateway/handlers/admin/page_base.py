"""What every admin page shares: its URLs, the guard that turns refusals into the sign-in
redirect, the 403 page or re-authentication, rendering with the CSRF token, and finding the
member a page is about."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from gateway import admin as members_of
from gateway.decision import Mode
from gateway.errors import Forbidden, NotFound
from gateway.handlers.admin.access import Admin, AdminRefused, NotAdmin
from gateway.handlers.shared.csrf import CSRF_FIELD, attach_csrf_cookie, csrf_token
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.shared.verified import NotSignedIn
from gateway.i18n import N_, gettext, moment_words
from gateway.policy.model import Company

ROOT = "/.gateway/admin/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def company_url(company: Company) -> str:
    return f"{ROOT}{quote(company.id, safe='')}/"


def member_url(company: Company, user: str) -> str:
    return f"{company_url(company)}members/{quote(user, safe='@')}"


def reauth_url(back: str) -> str:
    return f"{ROOT}reauth?{urlencode({'rd': back})}"


def refused(request: web.Request, exc: AdminRefused | NotSignedIn, back: str) -> web.StreamResponse:
    if isinstance(exc, NotSignedIn):
        if context(request).mode is Mode.PORTAL:
            return see_other(gateway_url("login", back))
        raise Forbidden(
            N_("You are not signed in."),
            N_("Sign in to the application first, then open this page again."),
        )
    if isinstance(exc, NotAdmin):
        raise Forbidden(
            N_("These pages are for your company's administrators."),
            N_("If you should be one, ask whoever edits your company's policy to list you."),
        )
    return see_other(reauth_url(back))


def guarded(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Handler:
    """Refusals become the sign-in redirect, the 403 page or the re-authentication step."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        back = request.path if request.method == "GET" else _back(request)
        try:
            return await handler(request)
        except (AdminRefused, NotSignedIn) as exc:
            return refused(request, exc, back)

    return wrapper


def _back(request: web.Request) -> str:
    """Where to return after re-authenticating for a POST: the page its form was on."""
    company = context(request).policy.company_by_id(request.match_info.get("company", ""))
    if company is None:
        return ROOT
    user = request.match_info.get("user")
    if user is not None:
        return member_url(company, user)
    return f"{company_url(company)}enforce"


def shown(moment: float | None) -> str:
    """A time on the admin pages, in the admin's language ("15 January 2027, 08:15 UTC",
    "15. Januar 2027, 08:15 UTC"); the CLI and the API keep gateway.admin's forms."""
    if moment is None:
        return gettext("never")
    return moment_words(datetime.fromtimestamp(moment, UTC))


def render(request: web.Request, template: str, status: int = 200, **extra: Any) -> web.Response:
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    response = runtime(request).pages.render(
        template,
        status=status,
        org=extra.get("company"),
        csrf_field=CSRF_FIELD,
        csrf_token=token,
        shown=shown,
        **extra,
    )
    attach_csrf_cookie(response, request, cookies)
    return response


async def find_member(request: web.Request, admin: Admin) -> members_of.Member:
    """The member of the admin's company named in the path, or the 404 page."""
    rt = runtime(request)
    found = await members_of.member(
        rt.store, context(request).policy, admin.company, request.match_info["user"], rt.clock()
    )
    if found is None:
        raise NotFound(
            N_("There is no such member of your company."), N_("Go back to the list of members.")
        )
    return found
