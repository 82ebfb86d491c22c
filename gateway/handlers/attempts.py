"""Wrong answers at the gateway's doors (passwords and second factors), counted in the store by
user and address, and the 429 page that says how long to wait (gateway.regulation). A browser
that got the user's password right before (its `gateway_browser` id, admin_seen) is counted
apart from strangers' guesses at the user-wide limit."""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from aiohttp import web

from gateway import regulation
from gateway.audit import audit
from gateway.handlers.admin_seen import browser_digest
from gateway.handlers.common import company_for, context, runtime
from gateway.policy.model import AttemptLimits
from gateway.store import StoreUnavailable

log = logging.getLogger("gateway.attempts")

MAX_USER_KEY = regulation.MAX_USER_KEY
HOLD = 30.0  # seconds: the longest one answer may take to check (a login sent upstream included)
HOLD_WAIT = 2.0  # seconds an answer waits for its turn before "please wait a moment"
PASSWORD = "password"  # noqa: S105 - what a wrong password is counted as
# the second-factor method whose answer this request carries (set by the dispatcher), so that a
# wrong answer is recorded under its method whoever counts it
answering: ContextVar[str | None] = ContextVar("gateway_answering", default=None)


def _limits(request: web.Request, user: str) -> AttemptLimits:
    company = company_for(request, user)
    return company.attempts if company is not None else regulation.DEFAULT


def _address(request: web.Request) -> str | None:
    address = context(request).client_ip
    return str(address) if address is not None else None


def _keys(request: web.Request, user: str) -> dict[str, str]:
    return regulation.keys(regulation.user_key(user), _address(request))


async def known_browser(request: web.Request, user: str) -> str | None:
    """The hash of this browser's id if it got a password of `user` right within
    regulation.KNOWN_BROWSER_WINDOW (admin_seen.seen_at_first_factor), else None."""
    digest = browser_digest(request)
    if digest is None or len(user) > MAX_USER_KEY:
        return None
    rt = runtime(request)
    since = rt.clock() - regulation.KNOWN_BROWSER_WINDOW
    return digest if await rt.store.knows_browser(user, digest, since) else None


@asynccontextmanager
async def one_at_a_time(
    request: web.Request, user: str, per_address: bool = False
) -> AsyncIterator[bool]:
    """Answers of one user are checked one at a time, across instances: an answer waits its
    turn for a moment, then yields False if another is still being checked. Otherwise answers
    sent in parallel would all pass the delay and lockout check before any of them counted."""
    rt = runtime(request)
    name = f"answer:{regulation.user_key(user)}"
    if per_address:  # passwords: a stranger's guesses hold up only their own address
        name += f"|{regulation.address_of(_address(request))}"
    token = secrets.token_hex(8)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + HOLD_WAIT
    held = await rt.store.acquire(name, token, rt.clock(), HOLD)
    while not held and loop.time() < give_up:  # two devices of one user: take turns
        await asyncio.sleep(0.05)
        held = await rt.store.acquire(name, token, rt.clock(), HOLD)
    try:
        yield held
    finally:
        if held:
            try:
                await rt.store.release(name, token)
            except StoreUnavailable as exc:  # it lapses by itself
                log.warning("could not release the answer hold of %s: %s", user, exc)


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


async def wait_for(request: web.Request, user: str) -> regulation.Lockout | None:
    """The lockout or delay in force for this user from this address and browser, across
    instances."""
    return await _wait_for(request, user, await known_browser(request, user))


async def _wait_for(
    request: web.Request, user: str, browser: str | None
) -> regulation.Lockout | None:
    rt = runtime(request)
    now = rt.clock()
    limits = _limits(request, user)
    failures: dict[str, list[float]] = {}
    scopes = regulation.counted(regulation.user_key(user), _address(request), browser)
    for scope, keys in scopes.items():
        since = now - regulation.limit_of(limits, scope)[1]
        failures[scope] = [at for key in keys for at in await rt.store.failures_since(key, since)]
    return regulation.lockout(failures, now, limits)


async def count_failure(request: web.Request, user: str, what: str) -> regulation.Lockout | None:
    """Record one wrong answer (`what`: password or a method name); the wait it leads to. A new
    lockout (not a mere delay) is audited."""
    rt = runtime(request)
    ctx = context(request)
    now = rt.clock()
    browser = await known_browser(request, user)
    password = what == PASSWORD  # else a wrong second factor: the password was right
    for key in regulation.recorded(regulation.user_key(user), _address(request), browser, password):
        await rt.store.record_failure(key, now)
    found = await _wait_for(request, user, browser)
    if what != PASSWORD:
        what = answering.get() or what
    metrics = rt.metrics
    metrics.count(metrics.failures, PASSWORD if what == PASSWORD else "second_factor")
    audit("failure", what=what, user=user, ip=ctx.client_ip, request_id=ctx.request_id)
    if found is not None and not found.is_delay:
        metrics.count(metrics.lockouts, found.scope)
        audit(
            "lockout",
            user=user,
            scope=found.scope,
            until=found.until,
            ip=ctx.client_ip,
            request_id=ctx.request_id,
        )
    return found


async def forget_failures(request: web.Request, user: str) -> None:
    """After a second factor actually presented: the user's counts start again. The address's
    own count stays, since it may be guessing at other users."""
    rt = runtime(request)
    keys = _keys(request, user)
    for scope in ("user", "user_ip"):
        await rt.store.clear_failures(keys[scope])
    await rt.store.clear_failures(regulation.second_factor_key(regulation.user_key(user)))
    digest = browser_digest(request)
    if digest is not None:
        await rt.store.clear_failures(regulation.browser_key(regulation.user_key(user), digest))


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
