"""Wrong answers at the gateway's doors (passwords and second factors), counted in the store by
user and address (gateway.regulation), and the waits they lead to; answers of one user checked
one at a time. A browser that got the user's password right before (a known browser) is
counted apart from strangers' guesses at the user-wide limit."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from gateway import regulation
from gateway.audit import audit
from gateway.policy.model import AttemptLimits
from gateway.sessions import MAX_FAILURES
from gateway.signin.browsers import browser_digest
from gateway.signin.visit import Visit
from gateway.store import StoreUnavailable

log = logging.getLogger("gateway.attempts")

MAX_USER_KEY = regulation.MAX_USER_KEY
HOLD = 30.0  # seconds: the longest one answer may take to check (a login sent upstream included)
HOLD_WAIT = 2.0  # seconds an answer waits for its turn before "please wait a moment"
PASSWORD = "password"  # noqa: S105 - what a wrong password is counted as
# the second-factor method whose answer this request carries (set by the dispatcher), so that a
# wrong answer is recorded under its method whoever counts it
answering: ContextVar[str | None] = ContextVar("gateway_answering", default=None)


def _limits(visit: Visit, user: str) -> AttemptLimits:
    company = visit.company_for(user)
    return company.attempts if company is not None else regulation.DEFAULT


async def known_browser(visit: Visit, user: str) -> str | None:
    """The hash of this browser's id if it got a password of `user` right within
    regulation.KNOWN_BROWSER_WINDOW (browsers.seen_at_first_factor), else None."""
    digest = browser_digest(visit)
    if digest is None or len(user) > MAX_USER_KEY:
        return None
    since = visit.clock() - regulation.KNOWN_BROWSER_WINDOW
    return digest if await visit.store.knows_browser(user, digest, since) else None


@asynccontextmanager
async def one_at_a_time(visit: Visit, user: str, per_address: bool = False) -> AsyncIterator[bool]:
    """Answers of one user are checked one at a time, across instances: an answer waits its
    turn for a moment, then yields False if another is still being checked. Otherwise answers
    sent in parallel would all pass the delay and lockout check before any of them counted."""
    store = visit.store
    name = f"answer:{regulation.user_key(user)}"
    if per_address:  # passwords: a stranger's guesses hold up only their own address
        name += f"|{regulation.address_of(visit.address)}"
    token = secrets.token_hex(8)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + HOLD_WAIT
    held = await store.acquire(name, token, visit.clock(), HOLD)
    while not held and loop.time() < give_up:  # two devices of one user: take turns
        await asyncio.sleep(0.05)
        held = await store.acquire(name, token, visit.clock(), HOLD)
    try:
        yield held
    finally:
        if held:
            try:
                await store.release(name, token)
            except StoreUnavailable as exc:  # it lapses by itself
                log.warning("could not release the answer hold of %s: %s", user, exc)


async def wait_for(visit: Visit, user: str) -> regulation.Lockout | None:
    """The lockout or delay in force for this user from this address and browser, across
    instances."""
    return await _wait_for(visit, user, await known_browser(visit, user))


async def _failures(
    visit: Visit, user: str, browser: str | None, now: float, limits: AttemptLimits
) -> dict[str, list[float]]:
    """Each scope's failure times within its window, for this user from this address and
    browser."""
    failures: dict[str, list[float]] = {}
    scopes = regulation.counted(regulation.user_key(user), visit.address, browser)
    for scope, keys in scopes.items():
        since = now - regulation.limit_of(limits, scope)[1]
        found = [at for key in keys for at in await visit.store.failures_since(key, since)]
        failures[scope] = found
    return failures


async def _wait_for(visit: Visit, user: str, browser: str | None) -> regulation.Lockout | None:
    now = visit.clock()
    limits = _limits(visit, user)
    failures = await _failures(visit, user, browser, now, limits)
    return regulation.lockout(failures, now, limits)


@dataclass(frozen=True)
class TriesLeft:
    """How many more wrong answers a sign-in takes, and what the last of them leads to."""

    tries: int
    # SIGN_IN_ENDS: the sign-in's own limit (MAX_FAILURES in a row) comes first, and the password
    # is asked again; else the regulation scope whose lockout it begins
    ends: str
    lasts: float = 0.0  # seconds: the longest that lockout lasts (0 for SIGN_IN_ENDS)


SIGN_IN_ENDS = "sign_in"


async def tries_left(visit: Visit, user: str, failures_in_sign_in: int) -> TriesLeft:
    """After a wrong second factor: how many more this sign-in takes (its `failures_in_sign_in`
    so far) before it ends, at MAX_FAILURES in a row or at a lockout in the store, whichever
    comes first; the lockout when both come at once, as steps.step decides."""
    now = visit.clock()
    limits = _limits(visit, user)
    failures = await _failures(visit, user, await known_browser(visit, user), now, limits)
    found = regulation.allowance(failures, now, limits)
    in_sign_in = max(0, MAX_FAILURES - failures_in_sign_in)
    if found is None or in_sign_in < found.tries:
        return TriesLeft(in_sign_in, SIGN_IN_ENDS)
    return TriesLeft(found.tries, found.scope, found.lasts)


async def count_failure(visit: Visit, user: str, what: str) -> regulation.Lockout | None:
    """Record one wrong answer (`what`: password or a method name); the wait it leads to. A new
    lockout (not a mere delay) is audited."""
    now = visit.clock()
    browser = await known_browser(visit, user)
    password = what == PASSWORD  # else a wrong second factor: the password was right
    counted_as = regulation.user_key(user)
    for key in regulation.recorded(counted_as, visit.address, browser, password):
        await visit.store.record_failure(key, now)
    for key in regulation.places(counted_as, visit.address, browser, password):
        await visit.store.note_failure_key(regulation.places_key(counted_as), key, now)
    found = await _wait_for(visit, user, browser)
    if what != PASSWORD:
        what = answering.get() or what
    metrics = visit.metrics
    metrics.count(metrics.failures, PASSWORD if what == PASSWORD else "second_factor")
    audit("failure", what=what, user=user, ip=visit.client_ip, request_id=visit.request_id)
    if found is not None and not found.is_delay:
        metrics.count(metrics.lockouts, found.scope)
        audit(
            "lockout",
            user=user,
            scope=found.scope,
            until=found.until,
            ip=visit.client_ip,
            request_id=visit.request_id,
        )
    return found


async def forget_failures(visit: Visit, user: str) -> None:
    """After a second factor actually presented: the user's counts start again. The address's
    own count stays, since it may be guessing at other users."""
    store = visit.store
    keys = regulation.keys(regulation.user_key(user), visit.address)
    for scope in ("user", "user_ip"):
        await store.clear_failures(keys[scope])
    await store.clear_failures(regulation.second_factor_key(regulation.user_key(user)))
    digest = browser_digest(visit)
    if digest is not None:
        await store.clear_failures(regulation.browser_key(regulation.user_key(user), digest))
