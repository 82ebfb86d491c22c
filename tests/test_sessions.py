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
