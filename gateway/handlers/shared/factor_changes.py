"""Changing how one signs in (adding or removing a passkey, new recovery codes) needs a second
factor presented in this session within the last REAUTH_AFTER seconds, as admin actions do: a
session verified by a trusted-network cookie, a deferral or an old code is first sent to
"Confirm it is you" (signin/reauth.py), which steps it down to the first factor and on to the
challenge (the class of Keycloak CVE-2026-3429, where a password-only session replaced the
victim's factor). A change made is audited, and the user told by email."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.audit import audit
from gateway.errors import Forbidden
from gateway.handlers.shared.redirects import gateway_url, see_other
from gateway.handlers.shared.request import context, runtime, site_name
from gateway.handlers.shared.verified import fresh
from gateway.i18n import N_
from gateway.notices import factor_changed
from gateway.sessions import Session
from gateway.signin.remember import forget_all

REAUTH = "reauth"  # the page: "Confirm it is you"


def stale(request: web.Request, session: Session) -> web.StreamResponse | None:
    """None when `session` may change its factors now; else where to go: a GET goes to
    "Confirm it is you" and comes back; a POST is refused (its form is sent again after)."""
    if fresh(request, session):
        return None
    back = request.path_qs if request.method == "GET" else request.path
    if request.method == "GET":
        return see_other(gateway_url(REAUTH, back))
    raise Forbidden(
        N_("Changing how you sign in needs a second step made in the last 15 minutes."),
        N_("Go back to the page, confirm it is you, and try again."),
    )


async def announce_factor(
    request: web.Request, session: Session, event: str, method: str, change: str, **fields: Any
) -> None:
    """A factor added or removed (or new recovery codes): audited, the browsers remembered for
    the user forgotten, and the user told by email when an address is known. `change` reads
    like "A passkey was added"."""
    ctx = context(request)
    assert session.user is not None
    audit(
        event,
        method=method,
        user=session.user,
        ip=ctx.client_ip,
        request_id=ctx.request_id,
        **fields,
    )
    # a factor changed: browsers remembered before it no longer skip the second factor
    await forget_all(
        runtime(request).store,
        session.user,
        "factor_change",
        ip=ctx.client_ip,
        request_id=ctx.request_id,
    )
    await factor_changed(
        runtime(request).notifier,
        session.user,
        change,
        session.identity.get("email"),
        site_name(request, session.user),
    )
