"""What the passkey pages of sign-in (signin/passkeys.py) and of the user's own account
(account/passkeys.py) share: the relying party a page names, the single-use challenge a form
answers, and the messages of adding one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.factors import webauthn
from gateway.factors.webauthn import RelyingParty
from gateway.handlers.shared.request import company_for, context, runtime
from gateway.i18n import N_
from gateway.sessions import Session

NO_SCRIPT = N_(
    "Passkeys need JavaScript, which is off or blocked in this browser. Turn it on and try "
    "again, or choose another way."
)
EXPIRED = N_("That took too long, so the request ran out. Try again.")
NOT_ADDED = N_("The passkey could not be added. Try again, or choose another method.")
BAD_NAME = N_(
    "Give this passkey a name of up to 60 characters that your other passkeys do not use, such "
    "as Work laptop."
)
assert webauthn.NAME_MAX == 60, "BAD_NAME names the longest name"  # i18n: not for people


def relying_party(request: web.Request, user: str | None) -> RelyingParty:
    ctx = context(request)
    company = company_for(request, user)
    name = company.branding.name if company is not None else ctx.application.name
    return RelyingParty.for_host(ctx.host, ctx.secure, name)


async def take_challenge(request: web.Request, session: Session, purpose: str) -> dict[str, Any]:
    """The challenge this form answers, gone from the session from now on (single use)."""
    rt = runtime(request)
    try:
        return webauthn.take_challenge(session.scratch, purpose, rt.clock())
    finally:
        await rt.sessions.save(session)
