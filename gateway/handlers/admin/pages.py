"""/.gateway/admin/: company admins see their company's members and act on them.

Pages: the companies an admin administers, the members table (search, filter, CSV), one
member (reset, name, phone), "Enable 2FA for all users", and re-authentication.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from gateway import admin as members_of
from gateway import regulation
from gateway.decision import Mode
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.factors.phone import InvalidNumber
from gateway.handlers.admin import actions
from gateway.handlers.admin.access import Admin, AdminRefused, NotAdmin, admin_of, companies_of
from gateway.handlers.shared.attempts import in_words
from gateway.handlers.shared.csrf import CSRF_FIELD, attach_csrf_cookie, csrf_token, require_csrf
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.shared.verified import NotSignedIn, signed_in, to_the_challenge
from gateway.policy.model import Company
from gateway.redirects import safe_redirect
from gateway.sessions import storage_key

ROOT = "/.gateway/admin/"
CONFIRM_RESET = "Tick the box to confirm the reset: it cannot be undone."
DONE = {
    "reset": "Two-step sign-in was reset: the member was signed out everywhere and sets it up "
    "again at their next sign-in.",
    "name": "The name was saved.",
    "phone": "The new phone number was saved. It is used only once the member confirms a code "
    "sent to it, at their next sign-in.",
    "enforced": "Two-step sign-in is now required for every member.",
    "session": "The session was ended.",
    "sessions": "Every session was ended.",
    "own_sessions": "Every session but this one was ended.",
    "session_gone": "That session had already ended.",
    "browser": "The browser is no longer remembered.",
    "browser_gone": "That browser was already forgotten.",
}

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
            "You are not signed in.",
            "Sign in to the application first, then open this page again.",
        )
    if isinstance(exc, NotAdmin):
        raise Forbidden(
            "These pages are for your company's administrators.",
            "If you should be one, ask whoever edits your company's policy to list you.",
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


def render(request: web.Request, template: str, status: int = 200, **extra: Any) -> web.Response:
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    response = runtime(request).pages.render(
        template,
        status=status,
        org=extra.get("company"),
        csrf_field=CSRF_FIELD,
        csrf_token=token,
        shown=members_of.shown,
        **extra,
    )
    attach_csrf_cookie(response, request, cookies)
    return response


@guarded
async def index(request: web.Request) -> web.StreamResponse:
    session, companies = await companies_of(request)
    if len(companies) == 1:
        return see_other(company_url(companies[0]))
    links = [{"url": company_url(c), "name": c.name} for c in companies]
    return render(request, "admin_companies.html", user=session.user, companies=links)


async def _members(request: web.Request, admin: Admin) -> list[members_of.Member]:
    rt = runtime(request)
    found = await members_of.members(rt.store, context(request).policy, admin.company, rt.clock())
    status = request.query.get("status", "")
    if status and status not in members_of.FILTERS:
        raise BadRequest("There is no such filter.", "Choose one from the list.")
    return members_of.select(found, request.query.get("q", ""), status)


@guarded
async def members_page(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    rt = runtime(request)
    found = await _members(request, admin)
    since = await members_of.enforced_since(rt.store, admin.company)
    query = {k: request.query[k] for k in ("q", "status") if request.query.get(k)}
    return render(
        request,
        "admin_members.html",
        company=admin.company,
        user=admin.user,
        members=found,
        member_url=lambda user: member_url(admin.company, user),
        q=request.query.get("q", ""),
        chosen=request.query.get("status", ""),
        filters=FILTER_LABELS,
        csv_url=f"{company_url(admin.company)}members.csv"
        + (f"?{urlencode(query)}" if query else ""),
        enforced=admin.company.enforce_2fa or since is not None,
        enforced_since=since,
        enforce_url=f"{company_url(admin.company)}enforce",
        done=DONE.get(request.query.get("done", "")),
    )


FILTER_LABELS = {
    "": "Everyone",
    "enrolled": "Set up",
    "not_enrolled": "Not set up",
    "deferred": "Put off",
    "locked_out": "Locked out",
    "possibly_shared": "Possibly shared login",
    "phone_pending": "New phone not yet confirmed",
}


@guarded
async def members_csv(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    found = await _members(request, admin)
    response = web.Response(text=members_of.to_csv(found), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{admin.company.id}-members.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def _member(request: web.Request, admin: Admin) -> members_of.Member:
    rt = runtime(request)
    found = await members_of.member(
        rt.store, context(request).policy, admin.company, request.match_info["user"], rt.clock()
    )
    if found is None:
        raise NotFound(
            "There is no such member of your company.", "Go back to the list of members."
        )
    return found


KNOWN_DAYS = round(regulation.KNOWN_BROWSER_WINDOW / regulation.DAY)


def lockout_line(lock: members_of.Lock, now: float) -> str:
    """One lockout as the member page says it: where, for how much longer (and until when),
    and why when the scope is not plain from where."""
    if lock.address is None:
        where = "In one of their own browsers" if lock.scope == "user_browser" else "Everywhere"
    elif lock.address == "unknown":
        where = "From an unknown address (a trusted proxy did not say which)"
    else:
        where = f"From {lock.address}"
    line = (
        f"{where}, for another {in_words(lock.until - now)} (until {members_of.shown(lock.until)})"
    )
    why = {
        "user": "too many wrong answers for this login from anywhere. Browsers where they "
        f"entered the right password in the last {KNOWN_DAYS} days are not held to it",
        "user_day": "too many wrong second steps in 24 hours",
        "user_browser": "too many wrong answers in that browser",
        "ip": "that address is locked for everyone, after too many wrong answers from it",
    }.get(lock.scope)
    return f"{line}: {why}." if why else f"{line}."


async def _member_page(
    request: web.Request, admin: Admin, status: int = 200, **extra: Any
) -> web.Response:
    member = await _member(request, admin)
    defaults: dict[str, Any] = {
        "error": None,
        "reset_error": False,
        "name_value": member.name or "",
        "phone_value": "",
    }
    rt = runtime(request)
    current = storage_key(admin.session.id)
    sessions = [
        {
            "handle": one.handle,
            "this": one.key == current,
            "browser": one.browser,
            "address": one.session.address or "unknown address",
            "application": one.session.app,
            "signed_in": one.session.created,
            "factor": one.factor,
            "last_seen": one.session.last_seen,
        }
        for one in await rt.sessions.active(member.user)
    ]
    browsers = [actions.browser_json(one) for one in await actions.remembered(request, member.user)]
    return render(
        request,
        "admin_member.html",
        status=status,
        sessions=sessions,
        remembered=browsers,
        company=admin.company,
        user=admin.user,
        member=member,
        lockouts=[lockout_line(lock, runtime(request).clock()) for lock in member.lockouts],
        back=company_url(admin.company),
        action=member_url(admin.company, member.user),
        done=DONE.get(request.query.get("done", "")),
        **{**defaults, **extra},
    )


@guarded
async def member_page(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    return await _member_page(request, admin)


@guarded
async def reset_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await _member(request, admin)
    if form.get("confirm") != "yes":  # one click must not wipe someone's factors
        return await _member_page(request, admin, status=400, error=CONFIRM_RESET, reset_error=True)
    await actions.reset(request, admin, member.user)
    if member.user == admin.user:  # signed out everywhere, this browser too: start again
        return see_other("/")
    return see_other(member_url(admin.company, member.user) + "?done=reset")


@guarded
async def session_end_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await _member(request, admin)
    back = member_url(admin.company, member.user)
    handle = form.get("session", "")
    if handle == runtime(request).sessions.handle(storage_key(admin.session.id)):
        return see_other(back)  # their own: signing out does that
    ended = await actions.end_session(request, admin, member.user, handle)
    return see_other(back + ("?done=session" if ended is not None else "?done=session_gone"))


@guarded
async def sessions_end_post(request: web.Request) -> web.StreamResponse:
    await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await _member(request, admin)
    await actions.end_sessions(request, admin, member.user)
    done = "own_sessions" if member.user == admin.user else "sessions"
    return see_other(member_url(admin.company, member.user) + f"?done={done}")


@guarded
async def browser_forget_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await _member(request, admin)
    forgotten = await actions.forget_browser(request, admin, member.user, form.get("browser", ""))
    done = "browser" if forgotten else "browser_gone"
    return see_other(member_url(admin.company, member.user) + f"?done={done}")


@guarded
async def profile_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await _member(request, admin)
    name, phone = form.get("name", ""), form.get("phone", "").strip()
    try:
        name = actions.clean_name(name)
    except ValueError as exc:
        return await _member_page(
            request, admin, 400, error=str(exc), name_value=name, phone_value=phone
        )
    if phone:
        try:
            await actions.change_phone(request, admin, member.user, phone)
        except InvalidNumber as exc:
            return await _member_page(
                request, admin, 400, error=str(exc), name_value=name, phone_value=phone
            )
    done = "phone" if phone else "name"
    if name != (member.name or ""):
        await actions.change_name(request, admin, member.user, name)
    return see_other(member_url(admin.company, member.user) + f"?done={done}")


async def _enforce_page(
    request: web.Request, admin: Admin, status: int = 200, error: str | None = None
) -> web.Response:
    since = await members_of.enforced_since(runtime(request).store, admin.company)
    return render(
        request,
        "admin_enforce.html",
        status=status,
        company=admin.company,
        user=admin.user,
        enforced=admin.company.enforce_2fa or since is not None,
        enforced_since=since,
        action=f"{company_url(admin.company)}enforce",
        back=company_url(admin.company),
        error=error,
    )


@guarded
async def enforce_page(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=True)
    return await _enforce_page(request, admin)


@guarded
async def enforce_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    if form.get("confirm") != "yes":
        error = "Tick the box to confirm that you understand this cannot be undone."
        return await _enforce_page(request, admin, 400, error)
    await actions.enforce(request, admin)
    return see_other(company_url(admin.company) + "?done=enforced")


@guarded
async def reauth_get(request: web.Request) -> web.StreamResponse:
    session = await signed_in(request)
    return render(
        request,
        "admin_reauth.html",
        user=session.user,
        rd=safe_redirect(request.query.get("rd")),
    )


@guarded
async def reauth_post(request: web.Request) -> web.StreamResponse:
    await require_csrf(request)
    session = await signed_in(request)
    return await to_the_challenge(request, session, safe_redirect(request.query.get("rd")))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/.gateway/admin", to_root)
    router.add_get(ROOT, index)
    router.add_get(ROOT + "reauth", reauth_get)
    router.add_post(ROOT + "reauth", reauth_post)
    router.add_get(ROOT + "{company}/", members_page)
    router.add_get(ROOT + "{company}/members.csv", members_csv)
    router.add_get(ROOT + "{company}/members/{user}", member_page)
    router.add_post(ROOT + "{company}/members/{user}/reset", reset_post)
    router.add_post(ROOT + "{company}/members/{user}/profile", profile_post)
    router.add_post(ROOT + "{company}/members/{user}/sessions/end", session_end_post)
    router.add_post(ROOT + "{company}/members/{user}/sessions/end-all", sessions_end_post)
    router.add_post(ROOT + "{company}/members/{user}/browsers/forget", browser_forget_post)
    router.add_get(ROOT + "{company}/enforce", enforce_page)
    router.add_post(ROOT + "{company}/enforce", enforce_post)


async def to_root(request: web.Request) -> web.StreamResponse:
    return see_other(ROOT)
