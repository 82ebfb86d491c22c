"""/.gateway/account/sessions, "Where you're signed in": the signed-in person's live gateway
sessions (gateway.sessions.SessionManager.active), each with its browser and system, the
address and time of its sign-in and the factor used, when it was last seen; this one marked.
The person ends one, or all the others, with no fresh factor: ending a session takes nothing
away from them. Each session is named by its handle (a keyed digest of its storage key), never
by its id, and only the person's own are ever listed or found. Ended here at once, on other
instances within SessionManager's recheck_after; each end is audited."""

from __future__ import annotations

from aiohttp import web

from gateway.audit import audit
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.own_methods import ACCOUNT
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import company_for, context, runtime, visit
from gateway.handlers.shared.session_rows import browser_shown, remembered_row, row
from gateway.i18n import N_, gettext
from gateway.sessions import Level, Session, is_handle, storage_key
from gateway.signin import remember

SESSIONS = ACCOUNT + "/sessions"
DONE = "sessions_done"  # session scratch: what the last end did, shown once on the page


async def _signed_in(request: web.Request) -> Session | web.StreamResponse:
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        return see_other(gateway_url("challenge", SESSIONS))
    return session


async def sessions_get(request: web.Request) -> web.StreamResponse:
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    return await _render(request, found)


async def _render(request: web.Request, session: Session) -> web.StreamResponse:
    user = session.user
    assert user is not None
    rt = runtime(request)
    done = session.scratch.pop(DONE, None)
    if done is not None:
        await rt.sessions.save(session)
    now = rt.clock()
    mine = storage_key(session.id)
    active = await rt.sessions.active(user)
    rows = [row(a, now, a.key == mine) for a in active]
    rows.sort(key=lambda r: not r["this"])  # this one first, then the latest sign-ins
    claim = remember.read(visit(request).remember_cookie, rt.secrets.signing_keys)
    here = claim.handle if claim is not None and claim.user == user else None
    kept = [
        remembered_row(found, now, found.handle == here)
        for found in await remember.live(rt.store, user, company_for(request, user), now)
    ]
    kept.sort(key=lambda r: not r["this"])
    return page(
        request,
        "sessions.html",
        session,
        done=str(done) if done else None,
        rows=rows,
        others=sum(1 for r in rows if not r["this"]),
        remembered=kept,
        scripts=True,  # static/times.js: the times in the browser's own zone
    )


async def _done(request: web.Request, session: Session, message: str) -> web.StreamResponse:
    session.scratch[DONE] = message
    await runtime(request).sessions.save(session)
    return see_other(SESSIONS)


async def end_post(request: web.Request) -> web.StreamResponse:
    """End one of the person's other sessions, named by its handle; or, with `browser`, forget
    one of their remembered browsers."""
    form = await require_csrf(request)
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    user = found.user
    assert user is not None
    rt = runtime(request)
    if "browser" in form:
        return await _forget(request, found, user, form.get("browser", ""))
    handle = form.get("session", "")
    if not is_handle(handle):
        return see_other(SESSIONS)
    if handle == rt.sessions.handle(storage_key(found.id)):
        return await _done(request, found, N_("To end this session, sign out."))
    ended = await rt.sessions.end_handle(user, handle)
    if ended is None:
        return await _done(request, found, N_("That session had already ended."))
    audit(
        "session_ended",
        user=user,
        session=ended.handle,
        by="self",
        ip=context(request).client_ip,
    )
    return await _done(
        request,
        found,
        gettext(
            "The session in %(browser)s was ended.", browser=browser_shown(ended.session.user_agent)
        ),
    )


async def end_others_post(request: web.Request) -> web.StreamResponse:
    """End every session of the person but this one."""
    await require_csrf(request)
    found = await _signed_in(request)
    if not isinstance(found, Session):
        return found
    user = found.user
    assert user is not None
    rt = runtime(request)
    ended = await rt.sessions.end_others(user, found.id)
    audit(
        "sessions_ended", user=user, sessions_ended=ended, by="self", ip=context(request).client_ip
    )
    keep = remember.own_handle(visit(request), user)  # this browser stays remembered
    await remember.forget_others(rt.store, user, keep, rt.clock(), "sessions_ended", by="self")
    plural = "session was" if ended == 1 else "sessions were"
    return await _done(request, found, f"{ended} other {plural} ended.")


async def _forget(
    request: web.Request, session: Session, user: str, handle: str
) -> web.StreamResponse:
    """ "Forget" a remembered browser: it is asked for the second factor at its next sign-in."""
    if not remember.is_handle(handle):
        return see_other(SESSIONS)
    rt = runtime(request)
    known = await rt.store.remembered_browser(user, handle, rt.clock())
    if not await rt.store.forget_browser(user, handle):
        return await _done(request, session, N_("That browser was already forgotten."))
    audit(
        "browser_forgotten",
        user=user,
        browser=handle,
        by="self",
        ip=context(request).client_ip,
    )
    if known is not None:
        words = browser_shown(known.record.get("user_agent"))
        said = gettext(
            "%(browser)s is no longer remembered.", browser=words[:1].upper() + words[1:]
        )
    else:
        said = gettext("The browser is no longer remembered.")
    return await _done(request, session, said)
