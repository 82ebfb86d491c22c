"""What an admin can do to a member or to the company, for the pages and the API alike: each
action is audited with the admin, member, company, address and request id."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.admin import PENDING_PHONE, iso
from gateway.audit import audit
from gateway.enforcement import enforce_company
from gateway.factors.phone import parse
from gateway.handlers.admin.access import Admin
from gateway.handlers.shared.request import context, runtime, visit
from gateway.i18n import N_
from gateway.notices import factor_changed
from gateway.sessions import ActiveSession, browser_words
from gateway.signin import remember
from gateway.signin.remember import forget_all
from gateway.store.base import RememberedBrowser

log = logging.getLogger("gateway.admin")

MAX_NAME = 200
RESET_NOTICE = N_("A reset was made by your company's administrator")
PHONE_NOTICE = N_("A new phone number was proposed by your company's administrator")


def _audit(request: web.Request, event: str, admin: Admin, **fields: Any) -> None:
    ctx = context(request)
    audit(
        event,
        admin=admin.user,
        company=admin.company.id,
        ip=ctx.client_ip,
        request_id=ctx.request_id,
        **fields,
    )


@dataclass(frozen=True)
class ResetDone:
    methods: list[str]
    sessions_ended: int
    notified: bool


async def reset(request: web.Request, admin: Admin, member: str) -> ResetDone:
    """The member's second factors removed and every session of theirs ended: at their next
    sign-in they enrol again. They are told by email when an address is known."""
    rt = runtime(request)
    methods = await rt.store.list_methods(member)
    await rt.store.delete_enrolments(member)
    ended = await rt.sessions.end_all(member)
    await forget_all(rt.store, member, "admin_reset", admin=admin.user, company=admin.company.id)
    _audit(request, "admin_reset", admin, member=member, methods=methods, sessions_ended=ended)
    log.info("%s reset the second factors of %s (%d sessions ended)", admin.user, member, ended)
    notified = await factor_changed(
        rt.notifier,
        member,
        RESET_NOTICE,
        None,
        admin.company.branding.name,
        language=admin.company.language,
    )
    return ResetDone(methods, ended, notified)


def clean_name(name: str) -> str:
    """A display name on one line; ValueError when it is too long."""
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise ValueError(f"A name can be at most {MAX_NAME} characters long.")
    return name


async def change_name(request: web.Request, admin: Admin, member: str, name: str) -> str:
    """The member's display name (empty removes it); ValueError when it cannot be used."""
    name = clean_name(name)
    rt = runtime(request)
    now = rt.clock()
    await rt.store.note_user(member, admin.company.id, now, {"name": name or None})
    _audit(request, "admin_name_changed", admin, member=member, name=name or None)
    return name


async def change_phone(request: web.Request, admin: Admin, member: str, typed: str) -> str:
    """A new phone number for the member, kept pending until the member confirms a code sent to
    it at their next sign-in; raises InvalidNumber (a ValueError). Returns its last 4 digits."""
    rt = runtime(request)
    phone = parse(typed, rt.senders.default_region)
    pending = rt.secrets.cipher.encrypt(phone.e164, PENDING_PHONE + member)
    now = rt.clock()
    facts = {"pending_phone": pending, "pending_phone_line_type": phone.line_type.value}
    await rt.store.note_user(member, admin.company.id, now, facts)
    _audit(request, "admin_phone_changed", admin, member=member, ending=phone.ending)
    # a factor change: browsers remembered before it no longer skip the second factor
    await remember.forget_all(rt.store, member, "admin_phone_changed", admin=admin.user)
    await factor_changed(
        rt.notifier,
        member,
        PHONE_NOTICE,
        None,
        admin.company.branding.name,
        language=admin.company.language,
    )
    return phone.ending


async def end_session(
    request: web.Request, admin: Admin, member: str, handle: str
) -> ActiveSession | None:
    """End one of the member's sessions, named by its handle; None when they have no such
    session (ended already). Here at once, on other instances within recheck_after."""
    ended = await runtime(request).sessions.end_handle(member, handle)
    if ended is not None:
        _audit(request, "admin_session_ended", admin, member=member, session=ended.handle)
        log.info("%s ended a session of %s", admin.user, member)
    return ended


async def end_sessions(request: web.Request, admin: Admin, member: str) -> int:
    """End every session of the member; an admin ending their own keeps the one they use."""
    keep = admin.session.id if member == admin.user else None
    rt = runtime(request)
    ended = await rt.sessions.end_others(member, keep)
    _audit(request, "admin_sessions_ended", admin, member=member, sessions_ended=ended)
    own = remember.own_handle(visit(request), member) if member == admin.user else None
    await remember.forget_others(
        rt.store, member, own, rt.clock(), "admin_sessions_ended", admin=admin.user
    )
    log.info("%s ended %d sessions of %s", admin.user, ended, member)
    return ended


async def remembered(request: web.Request, admin: Admin, member: str) -> list[RememberedBrowser]:
    """The member's remembered browsers ("Remember this browser") that still skip the second
    factor now, each ending when the company's policy ends it."""
    rt = runtime(request)
    return await remember.live(rt.store, member, admin.company, rt.clock())


async def forget_browser(request: web.Request, admin: Admin, member: str, handle: str) -> bool:
    """Forget one of the member's remembered browsers: it is asked for the second factor at its
    next sign-in. False when there was no such browser (forgotten already, or lapsed)."""
    forgotten = await runtime(request).store.forget_browser(member, handle)
    if forgotten:
        _audit(request, "admin_browser_forgotten", admin, member=member, browser=handle)
        log.info("%s forgot a remembered browser of %s", admin.user, member)
    return forgotten


def browser_json(found: RememberedBrowser) -> dict[str, Any]:
    """One remembered browser for the JSON API (docs/admin-api.yaml, RememberedBrowser)."""
    since = found.record.get("since")
    agent = found.record.get("user_agent")
    return {
        "id": found.handle,
        "browser": browser_words(agent if isinstance(agent, str) else None),
        "user_agent": agent if isinstance(agent, str) else None,
        "address": found.record.get("address"),
        "remembered": iso(float(since)) if isinstance(since, int | float) else None,
        "until": iso(found.until),
    }


async def enforce(request: web.Request, admin: Admin) -> bool:
    """ "Enable 2FA for all users": the company's enforcement recorded in the store (the
    ratchet). True when it is new; only an operator can lift it."""
    rt = runtime(request)
    new = await enforce_company(rt.store, admin.company, rt.clock(), f"admin {admin.user}")
    _audit(request, "admin_enforce", admin, new=new)
    return new
