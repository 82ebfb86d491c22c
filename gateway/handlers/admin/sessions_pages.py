"""The admin member page's sessions and remembered browsers: what it lists (`sections`), and
ending one session, every session, or forgetting one remembered browser of the member."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.handlers.admin import actions
from gateway.handlers.admin.access import Admin, admin_of
from gateway.handlers.admin.page_base import ROOT, find_member, guarded, member_url
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.redirects import see_other
from gateway.handlers.shared.request import runtime
from gateway.handlers.shared.session_rows import remembered_row, row
from gateway.i18n import N_
from gateway.sessions import storage_key

DONE = {
    "session": N_("The session was ended."),
    "sessions": N_("Every session was ended."),
    "own_sessions": N_("Every session but this one was ended."),
    "session_gone": N_("That session had already ended."),
    "browser": N_("The browser is no longer remembered."),
    "browser_gone": N_("That browser was already forgotten."),
}


async def sections(request: web.Request, admin: Admin, user: str) -> dict[str, Any]:
    """The member's live sessions (the admin's own marked) and remembered browsers, as
    _session_list.html lists them on admin_member.html: the rows of the person's own sessions
    page, times in the admin's language."""
    rt = runtime(request)
    current = storage_key(admin.session.id)
    now = rt.clock()
    sessions = [row(one, now, one.key == current) for one in await rt.sessions.active(user)]
    browsers = [
        remembered_row(found, now, this=False)
        for found in await actions.remembered(request, admin, user)
    ]
    return {"sessions": sessions, "remembered": browsers}


@guarded
async def session_end_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await find_member(request, admin)
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
    member = await find_member(request, admin)
    await actions.end_sessions(request, admin, member.user)
    done = "own_sessions" if member.user == admin.user else "sessions"
    return see_other(member_url(admin.company, member.user) + f"?done={done}")


@guarded
async def browser_forget_post(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    admin = await admin_of(request, request.match_info["company"], action=True)
    member = await find_member(request, admin)
    forgotten = await actions.forget_browser(request, admin, member.user, form.get("browser", ""))
    done = "browser" if forgotten else "browser_gone"
    return see_other(member_url(admin.company, member.user) + f"?done={done}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(ROOT + "{company}/members/{user}/sessions/end", session_end_post)
    router.add_post(ROOT + "{company}/members/{user}/sessions/end-all", sessions_end_post)
    router.add_post(ROOT + "{company}/members/{user}/browsers/forget", browser_forget_post)
