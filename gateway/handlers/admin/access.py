"""Who may use the admin pages and API: a verified session whose second factor was actually
presented (not skipped by a trusted network or a deferral), of a user the company's policy names
as an admin; for actions, that second factor must be at most REAUTH_AFTER old.

A stale admin session is sent to re-authenticate (shared/verified.to_the_challenge): the session
steps down to "first factor done" (under a new id) and the usual challenge page asks for a fresh
second factor, then goes back. No verified session at all is shared/verified.NotSignedIn.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.admin import administered, is_admin
from gateway.handlers.shared.request import context
from gateway.handlers.shared.verified import fresh, signed_in
from gateway.policy.model import Company
from gateway.sessions import Session
from gateway.signin.completion import REAL_FACTORS


class AdminRefused(Exception):
    """Base of the reasons an admin request is refused."""


class NotAdmin(AdminRefused):
    """Signed in, but not an admin of that company (or no such company)."""


class ReauthNeeded(AdminRefused):
    """An admin whose second factor is too old (or was skipped) for this request."""


@dataclass(frozen=True)
class Admin:
    session: Session
    user: str
    company: Company


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
