"""The pages that say an answer must wait: 429 while another answer of the user is checked, and
the wait a lockout or delay asks for (what is counted and when: gateway.signin.attempts)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from aiohttp import web

from gateway import regulation
from gateway.handlers.common import runtime


def busy(request: web.Request, back: str, back_text: str) -> web.Response:
    """429: another answer of this user is being checked right now."""
    return runtime(request).pages.render(
        "error.html",
        status=429,
        headers={"Retry-After": "1"},
        title="Please wait a moment",
        message="Another answer for this account is being checked right now.",
        next_step="Wait a second, then try again.",
        link=back,
        link_text=back_text,
    )


def refusal(
    request: web.Request, lockout: regulation.Lockout, back: str, back_text: str
) -> web.Response:
    """The 429 page: how long to wait, and where to go then."""
    rt = runtime(request)
    wait = max(1, math.ceil(lockout.until - rt.clock()))
    if lockout.is_delay:
        title = "Please wait a moment"
        message = "The last answers were not right, so each new try has to wait a little longer."
        next_step = f"Try again in {wait} second{'s' if wait != 1 else ''}."
    else:
        when = datetime.fromtimestamp(lockout.until, UTC).strftime("%H:%M UTC")
        title = "Too many wrong answers"
        message = "There have been too many wrong answers for this sign-in recently."
        next_step = f"Wait until {when}, then sign in again."
    return rt.pages.render(
        "error.html",
        status=429,
        headers={"Retry-After": str(wait)},
        title=title,
        message=message,
        next_step=next_step,
        link=back,
        link_text=back_text,
    )
