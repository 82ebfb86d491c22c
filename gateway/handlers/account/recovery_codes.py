"""The user's own recovery codes: /.gateway/recovery shows a new set once (right after the first
enrolment, or when the user makes new ones, which needs a recent second factor) and otherwise
how many remain; /.gateway/recovery/used follows a sign-in with a code. Signing in with a code:
signin/recovery.py."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.audit import audit
from gateway.errors import NotFound
from gateway.factors import recovery
from gateway.factors.recovery import RECOVERY
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.factor_changes import announce_factor, stale
from gateway.handlers.shared.methods import allowed
from gateway.handlers.shared.pages import page
from gateway.handlers.shared.redirects import gateway_url, rd, see_other
from gateway.handlers.shared.request import company_for, context, runtime
from gateway.offload import off_loop
from gateway.sessions import Level, Session

log = logging.getLogger("gateway.challenge")

FEW = 3  # this many codes left or fewer: the user is told to make new ones
REGENERATED = "New recovery codes were made (the old ones no longer work)"


def remaining_text(count: int) -> str:
    if count == 0:
        return "No recovery codes remain."
    return f"{count} code remains." if count == 1 else f"{count} codes remain."


async def _verified(request: web.Request) -> Session | web.StreamResponse:
    """The verified session of a user whose company allows recovery codes and who has a real
    second factor to recover (not a deferral); else where to go."""
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        return see_other(gateway_url("challenge", rd(request)))
    rt = runtime(request)
    if RECOVERY not in allowed(company_for(request, session.user), rt):
        raise NotFound("There is no gateway page at this address.")
    if not [m for m in await rt.store.list_methods(session.user) if m != RECOVERY]:
        raise NotFound(
            "Recovery codes come with two-step sign-in, which is not set up for you yet.",
            "Set up two-step sign-in first; your recovery codes are shown right after.",
        )
    return session


async def _new_codes(request: web.Request, user: str) -> list[str]:
    """A new set stored (the old one, if any, void at once); its codes to show once."""
    rt = runtime(request)
    made = await off_loop(recovery.generate, rt.clock())
    await rt.store.put_enrolment(user, RECOVERY, made.record)
    return made.codes


def _codes_page(request: web.Request, session: Session, **extra: Any) -> web.Response:
    return page(request, "recovery_codes.html", session, **extra)


async def codes_get(request: web.Request) -> web.StreamResponse:
    """New codes once (right after they were made), else how many remain and "make new ones"."""
    session = await _verified(request)
    if not isinstance(session, Session):
        return session
    user = session.user
    assert user is not None
    rt = runtime(request)
    fresh = session.scratch.pop(RECOVERY, None)
    if isinstance(fresh, dict) and isinstance(fresh.get("codes"), list):
        await rt.sessions.save(session)  # shown once: gone from the session before the page
        return _codes_page(request, session, codes=[str(c) for c in fresh["codes"]])
    refused = stale(request, session)  # making codes (even the first) changes how one signs in
    if refused is not None:
        return refused
    record = await rt.store.get_enrolment(user, RECOVERY)
    if record is None:  # the first enrolment has just happened (or codes were allowed since)
        codes = await _new_codes(request, user)
        log.info("recovery codes made for %s", user)
        audit("factor_added", method=RECOVERY, user=user, ip=context(request).client_ip)
        return _codes_page(request, session, codes=codes)
    count = recovery.remaining(record)
    return _codes_page(
        request, session, codes=None, remaining=count, remaining_text=remaining_text(count)
    )


async def codes_post(request: web.Request) -> web.StreamResponse:
    """ "Make new codes": the old ones stop working, the new ones are shown once."""
    await require_csrf(request)
    session = await _verified(request)
    if not isinstance(session, Session):
        return session
    refused = stale(request, session)
    if refused is not None:
        return refused
    user = session.user
    assert user is not None
    rt = runtime(request)
    session.scratch[RECOVERY] = {"codes": await _new_codes(request, user)}
    await rt.sessions.save(session)
    log.info("recovery codes replaced for %s", user)
    await announce_factor(request, session, "recovery_codes_replaced", RECOVERY, REGENERATED)
    return see_other(gateway_url("recovery", rd(request)))


async def used_get(request: web.Request) -> web.StreamResponse:
    """After signing in with a recovery code: how many remain, and on to the application."""
    session = await _verified(request)
    if not isinstance(session, Session):
        return session
    if session.second_factor != RECOVERY:
        return see_other(rd(request))
    assert session.user is not None
    count = recovery.remaining(await runtime(request).store.get_enrolment(session.user, RECOVERY))
    return page(
        request,
        "recovery_used.html",
        session,
        remaining=count,
        remaining_text=remaining_text(count),
        few=count <= FEW,
    )
