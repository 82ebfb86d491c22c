"""The verified session of a request, and how recent its second factor is: looking at the admin
pages needs a verified session, while an admin action or a change to how one signs in needs a
second factor presented in it within the last REAUTH_AFTER seconds. A session that has none is
sent to "Confirm it is you": it steps down to "first factor done" (under a new id) and the usual
challenge page asks for a fresh second factor, then goes back. An access rule's step-up
(`reauthenticate_after`) sends a verified session the same way (handlers/entry/proxy and
forward_auth)."""

from __future__ import annotations

from aiohttp import web

from gateway.admin import REAUTH_AFTER
from gateway.handlers.shared.cookies import load_session, set_session_cookie
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import runtime
from gateway.sessions import Level, Session
from gateway.signin.completion import REAL_FACTORS


class NotSignedIn(Exception):
    """No verified session in this browser."""


async def signed_in(request: web.Request) -> Session:
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        raise NotSignedIn
    return session


def factor_age(session: Session, now: float) -> float | None:
    """Seconds since this session presented a real second factor; None when it never did (let
    through by a trusted-network cookie or a deferral). Its own fields only: no store read."""
    if session.second_factor not in REAL_FACTORS or session.verified_at is None:
        return None
    return now - session.verified_at


def fresh(request: web.Request, session: Session) -> bool:
    """True when this session's own second factor is recent enough for an admin action."""
    age = factor_age(session, runtime(request).clock())
    return age is not None and age < REAUTH_AFTER


async def step_down(request: web.Request, session: Session) -> Session:
    """The verified session back to "first factor done" under a new id: the challenge page then
    asks for a fresh second factor, and completing it makes the session verified again."""
    session.failures = 0
    return await runtime(request).sessions.promote(session, Level.FIRST_FACTOR)


async def to_the_challenge(request: web.Request, session: Session, back: str) -> web.StreamResponse:
    """Step `session` down and send the browser to the challenge, then `back`: what "Confirm
    it is you" does, for admin actions and for a user's own factor changes alike."""
    session = await step_down(request, session)
    response = see_other(gateway_url("challenge", back))
    set_session_cookie(response, request, session)
    return response
