"""Sessions in the store: a late save never brings back a session that was ended meanwhile."""

from __future__ import annotations

from pathlib import Path

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
