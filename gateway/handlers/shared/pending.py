"""The pending sign-in: the session waiting for its second factor (read, read again after
waiting for its turn, or with a POST's form), and whether its enrolment may be put off."""

from __future__ import annotations

from aiohttp import web

from gateway.decision import Mode
from gateway.errors import SignInOver
from gateway.handlers.shared.cookies import load_session
from gateway.handlers.shared.csrf import require_csrf
from gateway.handlers.shared.own_methods import ENROL_NOW
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import company_for, context, runtime
from gateway.i18n import N_, duration_words
from gateway.redirects import safe_redirect
from gateway.sessions import Level, Session
from gateway.signin import deferral


async def pending(request: web.Request) -> Session | web.StreamResponse:
    """The session waiting for its second factor, or where to send a browser that has none."""
    session = await load_session(request)
    rd = safe_redirect(request.query.get("rd"))
    if session is not None and session.level is Level.VERIFIED:
        return see_other(rd)
    if session is None or session.level is not Level.FIRST_FACTOR or not session.user:
        if context(request).mode is Mode.PORTAL:
            return see_other(gateway_url("login", rd))
        raise SignInOver(
            N_("Your sign-in has expired or was not started."),
            N_("Go to the start page and sign in again."),
        )
    return session


async def pending_again(request: web.Request) -> Session | web.StreamResponse:
    """`pending`, read from the store anew: after waiting for its turn (attempts.one_at_a_time)
    an answer must see what the answers before it did to the session (its count of wrong
    answers, or its end)."""
    context(request).session_loaded = False
    return await pending(request)


async def pending_post(
    request: web.Request,
) -> tuple[dict[str, str], Session, str] | web.StreamResponse:
    """A POST from these pages: its form once the CSRF token checks out, and the pending session
    with its user; or where to send a browser that has no pending session."""
    form = await require_csrf(request)
    session = await pending(request)
    if not isinstance(session, Session):
        return session
    assert session.user is not None
    return form, session, session.user


async def deferral_offer(request: web.Request, user: str) -> str | None:
    """ "48 hours" when the enrolment page may offer "Remind me in 48 hours", else None (never to
    a signed-in user adding a backup method, nor to one who chose to set it up now)."""
    loaded = context(request).session
    if loaded is not None and (loaded.level is Level.VERIFIED or loaded.scratch.get(ENROL_NOW)):
        return None
    company = company_for(request, user)
    groups = context(request).groups_of(user)
    if company is not None and await deferral.may_defer(
        company, runtime(request).store, user, groups
    ):
        return duration_words(company.deferral)
    return None
