"""Telling users by email that their second factors changed (PRODUCT.md section 3)."""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("gateway.notices")


class Notifier(Protocol):
    """Sends one plain-text email; raises an exception when the message could not be handed
    over (the caller logs it: a notice that fails never blocks a sign-in)."""

    async def send_email(self, to: str, subject: str, body: str) -> None: ...


def address_of(user: str, identity_email: str | None = None) -> str | None:
    if identity_email:
        return identity_email
    return user if "@" in user else None


async def factor_changed(
    notifier: Notifier | None,
    user: str,
    change: str,
    identity_email: str | None = None,
    site: str = "this site",
) -> bool:
    """`change` reads as a sentence part: "An authenticator app was added". True when sent."""
    to = address_of(user, identity_email)
    if to is None:
        log.info("no email address known for %s: notice %r not sent", user, change)
        return False
    if notifier is None:
        log.info("no email sender configured: notice %r for %s not sent", change, user)
        return False
    body = (
        f"{change} to the two-step sign-in of {user} on {site}.\n\n"
        "If this was you, there is nothing to do.\n"
        "If it was not, tell your company's administrator now: someone may know your password.\n"
    )
    try:
        await notifier.send_email(to, f"Your two-step sign-in changed: {change.lower()}", body)
    except Exception:
        log.exception("the notice %r to %s could not be sent", change, to)
        return False
    return True
