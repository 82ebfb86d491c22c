"""What the sign-in tells the store about users and their browsers, for admins and for
regulation: each first and second factor; the browsers a login is used from before it enrols
(the shared-login warning); and every browser that got the user's password right (a known
browser, counted apart from strangers' guesses).

The browser id is a long-lived random cookie of the gateway's; the store keeps only its hash.
"""

from __future__ import annotations

import hashlib
import secrets

from gateway.admin import SHARED_BROWSERS, SHARED_WINDOW
from gateway.sessions import Session
from gateway.signin.methods import used_fact
from gateway.signin.visit import Visit

BROWSER_COOKIE = "gateway_browser"
BROWSER_MAX_AGE = 400 * 86400  # the longest browsers keep a cookie
SHARED = "shared_login"  # session scratch: distinct browsers seen, when the login looks shared
SHARED_ACCOUNT = "shared_account"  # session scratch: intercept mode's login names no user
BROWSER = "browser_id"  # session scratch: the id a browser without one is given


def digest(browser: str) -> str:
    return hashlib.sha256(browser.encode()).hexdigest()


def browser_digest(visit: Visit) -> str | None:
    """The hash of this browser's id (what the store keeps), if it sent one."""
    return digest(visit.browser_id) if visit.browser_id is not None else None


def _company_id(visit: Visit, user: str) -> str | None:
    company = visit.company_for(user)
    return company.id if company is not None else None


async def seen_at_first_factor(visit: Visit, session: Session, enrolled: bool) -> None:
    """Record the sign-in and this browser as one that knows the password (regulation);
    before enrolment, also count it among the login's browsers, and flag the session when the
    login looks shared. A browser without an id is given one in the session's scratch
    (`BROWSER`), for the handler to set with the next page or the completion of this sign-in,
    never with the answer to the password itself."""
    user = session.user
    assert user is not None
    store = visit.store
    now = visit.clock()
    groups = list(visit.groups_of(user)) if visit.groups_of else []
    # the directory groups as of this sign-in: admin pages place members by group with them
    facts = {"last_sign_in": now, "groups": groups or None}
    await store.note_user(user, _company_id(visit, user), now, facts)
    browser = visit.browser_id
    changed = False
    if browser is None:
        browser = session.scratch[BROWSER] = secrets.token_urlsafe(24)
        changed = True
    hashed = digest(browser)
    await store.note_known_browser(user, hashed, now)
    if not enrolled:
        count = await store.note_browser(user, hashed, now, now - SHARED_WINDOW)
        if count >= SHARED_BROWSERS:
            session.scratch[SHARED] = count
            changed = True
    if changed:
        await visit.sessions.save(session)


def browser_to_give(session: Session) -> str | None:
    """The id this browser was given at the first factor and has not been sent yet."""
    browser = session.scratch.get(BROWSER)
    return browser if isinstance(browser, str) else None


async def seen_at_second_factor(visit: Visit, session: Session, via: str) -> None:
    """Record a second factor actually presented: when, from where, and how."""
    user = session.user
    assert user is not None
    now = visit.clock()
    facts = {"last_2fa": now, "last_2fa_ip": visit.address, "last_2fa_via": via}
    facts[used_fact(via)] = now
    await visit.store.note_user(user, _company_id(visit, user), now, facts)
