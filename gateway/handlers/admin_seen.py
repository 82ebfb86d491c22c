"""What the sign-in flow tells the store about users, for admins: each first and second factor,
and the browsers a login is used from before it enrols (the shared-login warning); and, for
regulation, every browser that got the user's password right (a known browser).

The browser id is a long-lived random cookie of the gateway's (HttpOnly, SameSite=Lax, and
`__Host-` with Secure over TLS); the store keeps only its hash.
"""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web

from gateway.admin import SHARED_BROWSERS, SHARED_WINDOW
from gateway.handlers.common import company_for, context, cookie_name, cookie_value, runtime
from gateway.sessions import Session

BROWSER_COOKIE = "gateway_browser"
BROWSER_MAX_AGE = 400 * 86400  # the longest browsers keep a cookie
SHARED = "shared_login"  # session scratch: distinct browsers seen, when the login looks shared
SHARED_ACCOUNT = "shared_account"  # session scratch: intercept mode's login names no user
BROWSER = "browser_id"  # session scratch: the id a browser without one is given


def _company_id(request: web.Request, user: str) -> str | None:
    company = company_for(request, user)
    return company.id if company is not None else None


def _browser_id(request: web.Request) -> str | None:
    """This browser's id, if it sent one that the gateway could have given."""
    ctx = context(request)
    browser = cookie_value(ctx, cookie_name(ctx, BROWSER_COOKIE))
    return browser if browser and len(browser) <= 64 else None


def _digest(browser: str) -> str:
    return hashlib.sha256(browser.encode()).hexdigest()


def browser_digest(request: web.Request) -> str | None:
    """The hash of this browser's id (what the store keeps), if it sent one."""
    browser = _browser_id(request)
    return _digest(browser) if browser is not None else None


async def seen_at_first_factor(request: web.Request, session: Session, enrolled: bool) -> None:
    """Record the sign-in and this browser as one that knows the password (regulation);
    before enrolment, also count it among the login's browsers, and flag the session when the
    login looks shared. A browser without an id gets one with the next page or the completion
    of this sign-in (`browser_cookie`), never with the answer to the password itself."""
    rt = runtime(request)
    user = session.user
    assert user is not None
    now = rt.clock()
    await rt.store.note_user(user, _company_id(request, user), now, {"last_sign_in": now})
    browser = _browser_id(request)
    changed = False
    if browser is None:
        browser = session.scratch[BROWSER] = secrets.token_urlsafe(24)
        changed = True
    digest = _digest(browser)
    await rt.store.note_known_browser(user, digest, now)
    if not enrolled:
        count = await rt.store.note_browser(user, digest, now, now - SHARED_WINDOW)
        if count >= SHARED_BROWSERS:
            session.scratch[SHARED] = count
            changed = True
    if changed:
        await rt.sessions.save(session)


def browser_cookie(request: web.Request, session: Session) -> str | None:
    """The Set-Cookie line that gives this browser the id it was given at the first factor."""
    browser = session.scratch.get(BROWSER)
    if not isinstance(browser, str):
        return None
    ctx = context(request)
    name = cookie_name(ctx, BROWSER_COOKIE)
    return f"{name}={browser}; Path=/; Max-Age={BROWSER_MAX_AGE}; HttpOnly; SameSite=Lax" + (
        "; Secure" if ctx.secure else ""
    )


async def seen_at_second_factor(request: web.Request, session: Session, via: str) -> None:
    """Record a second factor actually presented: when, from where, and how."""
    rt = runtime(request)
    user = session.user
    assert user is not None
    now = rt.clock()
    ip = context(request).client_ip
    facts = {"last_2fa": now, "last_2fa_ip": str(ip) if ip is not None else None}
    await rt.store.note_user(user, _company_id(request, user), now, {**facts, "last_2fa_via": via})
