"""Who may use the admin pages and API: a verified session whose second factor was actually
presented (not skipped by a trusted network or a deferral), of a user the company's policy names
as an admin; for actions, that second factor must be at most REAUTH_AFTER old.

A stale admin session is sent to re-authenticate: the session steps down to "first factor done"
(under a new id) and the usual challenge page asks for a fresh second factor, then goes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.admin import REAUTH_AFTER, administered, is_admin
from gateway.handlers.common import (
    context,
    gateway_url,
    load_session,
    runtime,
    see_other,
    set_session_cookie,
)
from gateway.policy.model import Company
from gateway.sessions import Level, Session
from gateway.signin.completion import REAL_FACTORS


class AdminRefused(Exception):
    """Base of the reasons an admin request is refused."""


class NotSignedIn(AdminRefused):
    """No verified session in this browser."""


class NotAdmin(AdminRefused):
    """Signed in, but not an admin of that company (or no such company)."""


class ReauthNeeded(AdminRefused):
    """An admin whose second factor is too old (or was skipped) for this request."""


@dataclass(frozen=True)
class Admin:
    session: Session
    user: str
    company: Company


async def signed_in(request: web.Request) -> Session:
    session = await load_session(request)
    if session is None or session.level is not Level.VERIFIED or not session.user:
        raise NotSignedIn
    return session


def fresh(request: web.Request, session: Session) -> bool:
    """True when this session's own second factor is recent enough for an admin action."""
    if session.second_factor not in REAL_FACTORS or session.verified_at is None:
        return False
    return runtime(request).clock() - session.verified_at < REAUTH_AFTER


async def admin_of(request: web.Request, company_id: str, action: bool) -> Admin:
    """The admin behind this request for `company_id`. Looking needs a second factor presented
    in this session; an action (`action`) needs one made within REAUTH_AFTER seconds."""
    session = await signed_in(request)
    company = context(request).policy.company_by_id(company_id)
    if company is None or not is_admin(company, session.user):
        raise NotAdmin
    if session.second_factor not in REAL_FACTORS or (action and not fresh(request, session)):
        raise ReauthNeeded
    assert session.user is not None
    return Admin(session, session.user, company)


async def companies_of(request: web.Request) -> tuple[Session, list[Company]]:
    session = await signed_in(request)
    companies = administered(context(request).policy, session.user)
    if not companies:
        raise NotAdmin
    return session, companies


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
