"""Sessions in the store: a late save never brings back a session that was ended meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.clock import FixedClock
from gateway.crypto import Cipher, generate_key
from gateway.sessions import TOUCH_EVERY, Level, SessionManager
from gateway.store import open_store

NOW = 1_800_000_000.0


async def test_a_touch_after_logout_elsewhere_does_not_revive_the_session(tmp_path: Path) -> None:
    """Instance A loads a verified session (and will record the activity); instance B signs
    the user out; A's save must not store the session again."""
    clock = FixedClock(NOW)
    store = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=clock)
    await store.open()
    try:
        sessions = SessionManager(store, Cipher(generate_key()), clock)
        session = await sessions.promote(sessions.new("app"), Level.VERIFIED, "u")
        clock.advance(TOUCH_EVERY + 1)
        loaded = await sessions.load(session.id, "app")  # touched and saved: still stored
        assert loaded is not None
        assert await store.delete_user_sessions("u") == 1  # signed out elsewhere
        loaded.scratch["late"] = True
        assert not await sessions.save(loaded)
        assert await sessions.load(session.id, "app") is None
        fresh = sessions.new("app")  # a new session is stored by its first save
        assert await sessions.save(fresh)
        assert await sessions.load(fresh.id, "app") is not None
    finally:
        await store.close()


async def test_a_promotion_racing_a_reset_does_not_bring_the_user_back(tmp_path: Path) -> None:
    """An answer is being checked while an operator resets the user (or they sign out
    elsewhere): the verified session it makes ends with the pending one."""
    clock = FixedClock(NOW)
    store = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=clock)
    await store.open()
    try:
        sessions = SessionManager(store, Cipher(generate_key()), clock)
        pending = await sessions.promote(sessions.new("app"), Level.FIRST_FACTOR, "u")
        loaded = await sessions.load(pending.id, "app")
        assert loaded is not None
        assert await sessions.end_all("u") == 1
        verified = await sessions.promote(loaded, Level.VERIFIED)
        assert await sessions.load(verified.id, "app") is None
    finally:
        await store.close()


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _two_instances(
    tmp_path: Path,
) -> tuple[Any, FixedClock, Ticker, SessionManager, SessionManager]:
    """Two gateways (managers) on one store, as two instances or workers would be."""
    clock, ticker = FixedClock(NOW), Ticker()
    store = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=clock)
    await store.open()
    cipher = Cipher(generate_key())
    here = SessionManager(store, cipher, clock, recheck_after=2.0, monotonic=ticker)
    there = SessionManager(store, cipher, clock, recheck_after=2.0, monotonic=ticker)
    return store, clock, ticker, here, there


async def test_a_logout_elsewhere_takes_effect_here_within_the_recheck_bound(
    tmp_path: Path,
) -> None:
    """The forwarding path believes a verified session it read less than `recheck_after`
    seconds ago; a logout on another instance is seen once that has passed, never later."""
    store, _clock, ticker, here, there = await _two_instances(tmp_path)
    try:
        session = await here.promote(here.new("app"), Level.VERIFIED, "u")
        assert await here.load(session.id, "app", recent=True) is not None
        assert await there.sign_out(session) >= 1
        ticker.now += 1.9
        assert await here.load(session.id, "app", recent=True) is not None  # within the bound
        assert await here.load(session.id, "app") is None  # the pages always read the store
        ticker.now += 0.1
        assert await here.load(session.id, "app", recent=True) is None
    finally:
        await store.close()


async def test_a_logout_or_reset_on_this_instance_takes_effect_at_once(tmp_path: Path) -> None:
    store, _clock, _ticker, here, _there = await _two_instances(tmp_path)
    try:
        first = await here.promote(here.new("app"), Level.VERIFIED, "u")
        second = await here.promote(here.new("app"), Level.VERIFIED, "u")
        for session in (first, second):
            assert await here.load(session.id, "app", recent=True) is not None
        await here.end(first)
        assert await here.load(first.id, "app", recent=True) is None
        assert await here.end_all("u") == 1  # an admin's reset of the user
        assert await here.load(second.id, "app", recent=True) is None
    finally:
        await store.close()


async def test_only_verified_live_sessions_of_the_same_app_come_from_memory(
    tmp_path: Path,
) -> None:
    store, clock, ticker, here, there = await _two_instances(tmp_path)
    try:
        pending = await here.promote(here.new("app"), Level.FIRST_FACTOR, "p")
        assert await here.load(pending.id, "app", recent=True) is not None
        await there.end(pending)  # a pending session is read from the store every time
        assert await here.load(pending.id, "app", recent=True) is None

        verified = await here.promote(here.new("app"), Level.VERIFIED, "v")
        assert await here.load(verified.id, "app", recent=True) is not None
        assert await here.load(verified.id, "other", recent=True) is None
        clock.advance(verified.idle_timeout)  # idle too long: refused even from memory
        ticker.now += 0.5
        assert await here.load(verified.id, "app", recent=True) is None
    finally:
        await store.close()


async def test_a_session_changed_here_is_read_again(tmp_path: Path) -> None:
    """A save (new bound cookies, a touch) drops the remembered copy, so the next request
    reads what was stored."""
    store, _clock, _ticker, here, there = await _two_instances(tmp_path)
    try:
        session = await here.promote(here.new("app"), Level.VERIFIED, "u")
        remembered = await here.load(session.id, "app", recent=True)
        assert remembered is not None
        changed = await there.load(session.id, "app")
        assert changed is not None
        changed.bound["app_session"] = "digest"
        assert await there.save(changed)
        assert (await here.load(session.id, "app", recent=True)) is remembered  # not yet seen
        assert await here.save(remembered)  # written here: forgotten here
        again = await here.load(session.id, "app", recent=True)
        assert again is not None and again is not remembered
    finally:
        await store.close()
