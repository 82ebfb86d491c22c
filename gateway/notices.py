"""Telling users by email that their second factors changed (PRODUCT.md section 3)."""

from __future__ import annotations

import logging
from typing import Protocol

from gateway.i18n import current, gettext, speaking

log = logging.getLogger("gateway.notices")


def _notice(user: str, change: str, site: str) -> tuple[str, str]:
    said = gettext(change)
    body = "\n".join(
        (
            gettext(
                "%(change)s to the two-step sign-in of %(user)s on %(site)s.",
                change=said,
                user=user,
                site=site,
            ),
            "",
            gettext("If this was you, there is nothing to do."),
            gettext(
                "If it was not, tell your company's administrator now: someone may know your "
                "password."
            ),
        )
    )
    # English as it always was; German nouns keep their capitals, so only the first letter
    lowered = said.lower() if current() == "en" else said[:1].lower() + said[1:]
    subject = gettext("Your two-step sign-in changed: %(change)s", change=lowered)
    return subject, body + "\n"


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
    site: str = "",
    language: str | None = None,
) -> bool:
    """`change` reads as a sentence (N_-marked): "An authenticator app was added". True when
    sent. In `language` when given (the member's company's, for an admin's change), else in
    the language of the request that made the change (gateway.i18n)."""
    to = address_of(user, identity_email)
    if to is None:
        log.info("no email address known for %s: notice %r not sent", user, change)
        return False
    if notifier is None:
        log.info("no email sender configured: notice %r for %s not sent", change, user)
        return False
    with speaking(language or current()):
        subject, body = _notice(user, change, site or gettext("this site"))
    try:
        await notifier.send_email(to, subject, body)
    except Exception:
        log.exception("the notice %r to %s could not be sent", change, to)
        return False
    return True
