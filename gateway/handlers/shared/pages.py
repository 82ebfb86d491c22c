"""A gateway page for the user of a session (signing in, or signed in and changing their
factors): the company's branding, the form's CSRF token, the other ways to sign in, the note
about a shared login, a delay to wait, and the browser's id when it is given one."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.handlers.shared.cookies import browser_cookie
from gateway.handlers.shared.csrf import CSRF_FIELD, attach_csrf_cookie, csrf_token
from gateway.handlers.shared.request import company_for, runtime
from gateway.i18n import ago_words, date_words, gettext, ngettext
from gateway.keys import LOCKOUT, OTHER_WAYS
from gateway.redirects import safe_redirect
from gateway.sessions import Session
from gateway.signin import remember
from gateway.signin.browsers import SHARED, SHARED_ACCOUNT


def page(
    request: web.Request, template: str, session: Session, status: int = 200, **extra: Any
) -> web.Response:
    cookies: dict[str, str] = {}
    token = csrf_token(request, cookies)
    rt = runtime(request)
    company = company_for(request, session.user)
    waiting = request.get(LOCKOUT)
    if extra.get("error") and waiting is not None and waiting.is_delay:
        seconds = max(1, math.ceil(waiting.until - rt.clock()))
        wait = ngettext(
            "Wait %(num)s second before the next try.",
            "Wait %(num)s seconds before the next try.",
            seconds,
        )
        extra["error"] = f"{gettext(extra['error'])} {wait}"
    response = rt.pages.render(
        template,
        status=status,
        company=company,
        user=session.user,
        remember_for=remember.span_words(company),  # the challenges' "Remember this browser"
        csrf_field=CSRF_FIELD,
        csrf_token=token,
        rd=safe_redirect(request.query.get("rd")),
        other_ways=request.get(OTHER_WAYS, []),
        shared_login=session.scratch.get(SHARED),
        shared_account=bool(session.scratch.get(SHARED_ACCOUNT)),
        **extra,
    )
    attach_csrf_cookie(response, request, cookies)
    line = browser_cookie(request, session)
    if line is not None:
        response.headers.add("Set-Cookie", line)
    return response


def when(moment: float | None, now: float) -> dict[str, str] | None:
    """A moment for a page: machine-readable (ISO 8601, which static/times.js offers in the
    browser's own time zone as the element's title) and as people read it: how long ago, and
    the day when that is more than a day (in UTC: a page cannot know the person's zone)."""
    if moment is None:
        return None
    try:
        at = datetime.fromtimestamp(moment, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    text = ago_words(now - moment)
    if now - moment >= 86400:
        text = gettext("%(ago)s (on %(day)s)", ago=text, day=date_words(at))
    return {"iso": at.isoformat(timespec="seconds"), "text": text}
