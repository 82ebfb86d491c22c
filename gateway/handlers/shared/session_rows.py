"""A person's sessions and remembered browsers as the pages show them, in the person's
language: the rows of "Where you're signed in" and of an admin's member page alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.handlers.shared.pages import when
from gateway.i18n import gettext, moment_words
from gateway.sessions import ActiveSession, browser_parts
from gateway.store.base import RememberedBrowser


def browser_shown(user_agent: object) -> str:
    """A browser as the pages name it, in the person's language: "Firefox 133 on Windows 10",
    "Firefox 133 unter Windows 10", "unknown browser"."""
    browser, system = browser_parts(user_agent if isinstance(user_agent, str) else None)
    words = browser or gettext("unknown browser")
    return gettext("%(browser)s on %(system)s", browser=words, system=system) if system else words


def address_shown(address: object) -> str:
    # Translators: in "Signed in … from %(address)s" and "Remembered … from %(address)s"
    return address if isinstance(address, str) and address else gettext("unknown address")


def remembered_row(found: RememberedBrowser, now: float, this: bool) -> dict[str, Any]:
    """One remembered browser as the pages show it (its handle names it; the cookie, signed,
    is what lets it skip the second factor)."""
    record = found.record
    since = record.get("since")
    return {
        "handle": found.handle,
        "this": this,
        "browser": browser_shown(record.get("user_agent")),
        "address": address_shown(record.get("address")),
        "since": when(float(since), now) if isinstance(since, int | float) else None,
        "until": until(found.until),
    }


def until(moment: float) -> dict[str, str]:
    """A moment to come, for a page: ISO 8601 and its day and minute in UTC."""
    at = datetime.fromtimestamp(moment, UTC)
    return {"iso": at.isoformat(timespec="seconds"), "text": moment_words(at)}


def row(found: ActiveSession, now: float, this: bool) -> dict[str, Any]:
    """One session as the pages show it."""
    session = found.session
    return {
        "handle": found.handle,
        "this": this,
        "browser": browser_shown(session.user_agent),
        "address": address_shown(session.address),
        "application": session.app,
        "signed_in": when(session.created, now),
        "factor": gettext(found.factor),
        "last_seen": when(session.last_seen, now),
    }
