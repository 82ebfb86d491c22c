"""/.gateway/admin/: company admins see their company's members and act on them.

Pages: the companies an admin administers, the members table (search, filter, CSV), one
member (reset, name, phone; its sessions and remembered browsers are `sessions_pages`),
"Enable 2FA for all users", and re-authentication. What they share is `page_base`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway import admin as members_of
from gateway import regulation
from gateway.errors import BadRequest
from gateway.factors.phone import InvalidNumber
from gateway.handlers.admin import actions, sessions_pages
from gateway.handlers.admin.access import Admin, admin_of, companies_of
from gateway.handlers.admin.page_base import (
    ROOT,
    company_url,
    find_member,
    guarded,
    member_url,
    render,
    shown,
)
from gateway.handlers.shared.attempts import in_words
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.redirects import see_other
from gateway.handlers.shared.request import context, runtime
from gateway.handlers.shared.verified import signed_in, to_the_challenge
from gateway.i18n import N_, gettext
from gateway.redirects import safe_redirect

CONFIRM_RESET = N_("Tick the box to confirm the reset: it cannot be undone.")
DONE = {
    "reset": N_(
        "Two-step sign-in was reset: the member was signed out everywhere and sets it up "
        "again at their next sign-in."
    ),
    "name": N_("The name was saved."),
    "phone": N_(
        "The new phone number was saved. It is used only once the member confirms a code "
        "sent to it, at their next sign-in."
    ),
    "enforced": N_("Two-step sign-in is now required for every member."),
    **sessions_pages.DONE,
}


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
        raise BadRequest(N_("There is no such filter."), N_("Choose one from the list."))
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
    "": N_("Everyone"),
    "enrolled": N_("Set up"),
    "not_enrolled": N_("Not set up"),
    "deferred": N_("Put off"),
    "locked_out": N_("Locked out"),
    "possibly_shared": N_("Possibly shared login"),
    "phone_pending": N_("New phone not yet confirmed"),
}


@guarded
async def members_csv(request: web.Request) -> web.StreamResponse:
    admin = await admin_of(request, request.match_info["company"], action=False)
    found = await _members(request, admin)
    response = web.Response(text=members_of.to_csv(found), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{admin.company.id}-members.csv"'  # i18n: not for people
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


KNOWN_DAYS = round(regulation.KNOWN_BROWSER_WINDOW / regulation.DAY)


def lockout_line(lock: members_of.Lock, now: float) -> str:
    """One lockout as the member page says it: where, for how much longer (and until when),
    and why when the scope is not plain from where."""
    if lock.address is None:
        where = (
            N_("In one of their own browsers") if lock.scope == "user_browser" else N_("Everywhere")
        )
        where = gettext(where)
    elif lock.address == "unknown":
        where = gettext("From an unknown address (a trusted proxy did not say which)")
    else:
        where = gettext("From %(address)s", address=lock.address)
    line = gettext(
        "%(where)s, for another %(wait)s (until %(until)s)",
        where=where,
        wait=in_words(lock.until - now),
        until=shown(lock.until),
    )
    if lock.scope == "user":
        why = gettext(
            "too many wrong answers for this login from anywhere. Browsers where they entered "
            "the right password in the last %(days)s days are not held to it",
            days=KNOWN_DAYS,
        )
    else:
        why = {
            "user_day": N_("too many wrong second steps in 24 hours"),
            "user_browser": N_("too many wrong answers in that browser"),
            "ip": N_("that address is locked for everyone, after too many wrong answers from it"),
        }.get(lock.scope, "")
        why = gettext(why) if why else ""
    return gettext("%(line)s: %(why)s.", line=line, why=why) if why else f"{line}."


async def _member_page(
    request: web.Request, admin: Admin, status: int = 200, **extra: Any
) -> web.Response:
    member = await find_member(request, admin)
    defaults: dict[str, Any] = {
        "error": None,
        "reset_error": False,
        "name_value": member.name or "",
        "phone_value": "",
    }
    return render(
        request,
        "admin_member.html",
        status=status,
        **await sessions_pages.sections(request, admin, member.user),
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
    member = await find_member(request, admin)
    if form.get("confirm") != "yes":  # one click must not wipe someone's factors
        return await _member_page(request, admin, status=400, error=CONFIRM_RESET, reset_error=True)
    await actions.reset(request, admin, member.user)
    if member.user == admin.user:  # signed out everywhere, this browser too: start again
        return see_other("/")
    return see_other(member_url(admin.company, member.user) + "?done=reset")


@guarded
async def profile_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await find_member(request, admin)
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
        error = N_("Tick the box to confirm that you understand this cannot be undone.")
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
    sessions_pages.add_routes(router)
    router.add_get(ROOT + "{company}/enforce", enforce_page)
    router.add_post(ROOT + "{company}/enforce", enforce_post)


async def to_root(request: web.Request) -> web.StreamResponse:
    return see_other(ROOT)
