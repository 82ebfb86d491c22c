"""The forwarding path's session reads: requests that find no recent copy of a verified session
at the same moment share one store read (issue 20 part 3: with 32 connections, every recheck
read the session 32 times), never one begun before the session changed here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.clock import FixedClock
from gateway.crypto import Cipher, generate_key
from gateway.sessions import Level, SessionManager
from gateway.store import open_store

NOW = 1_700_000_000.0


class Slow:
    """A store whose session reads take a while and are counted."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def get_session(self, key: str, now: float) -> str | None:
        self.reads += 1
        await asyncio.sleep(0.05)
        return await self.store.get_session(key, now)  # type: ignore[no-any-return]


async def _manager(tmp_path: Path) -> tuple[Any, Slow, SessionManager]:
    clock = FixedClock(NOW)
    store = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=clock)
    await store.open()
    slow = Slow(store)
    return store, slow, SessionManager(slow, Cipher(generate_key()), clock)  # type: ignore[arg-type]


async def test_requests_at_once_share_one_read(tmp_path: Path) -> None:
    store, slow, sessions = await _manager(tmp_path)
    try:
        session = await sessions.promote(sessions.new("app"), Level.VERIFIED, "u")
        sessions.forget(session.id)
        found = await asyncio.gather(
            *(sessions.load(session.id, "app", recent=True) for _ in range(20))
        )
        assert slow.reads == 1
        assert all(s is not None and s.id == session.id for s in found)
        assert await sessions.load(session.id, "other", recent=True) is None  # its own read
        assert slow.reads == 2
    finally:
        await store.close()


async def test_a_read_begun_before_a_change_here_is_not_joined(tmp_path: Path) -> None:
    store, slow, sessions = await _manager(tmp_path)
    try:
        session = await sessions.promote(sessions.new("app"), Level.VERIFIED, "u")
        sessions.forget(session.id)
        early = asyncio.ensure_future(sessions.load(session.id, "app", recent=True))
        await asyncio.sleep(0.01)  # the read is in progress
        await sessions.end(session)  # a sign-out here
        late = await sessions.load(session.id, "app", recent=True)
        await early
        assert late is None and slow.reads == 2
    finally:
        await store.close()


async def test_a_session_in_the_making_is_each_request_s_own(tmp_path: Path) -> None:
    store, _slow, sessions = await _manager(tmp_path)
    try:
        pending = sessions.new("app")
        await sessions.save(pending)
        found = await asyncio.gather(
            *(sessions.load(pending.id, "app", recent=True) for _ in range(3))
        )
        assert all(s is not None and s.level is Level.ANONYMOUS for s in found)
        assert len({id(s) for s in found}) == 3  # each request changes its own copy
    finally:
        await store.close()


class Held:
    """A store that fetches a session at once and, while armed, holds its answer until
    released: a read that saw the session before a change here and ends after it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.armed = False
        self.fetched = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def get_session(self, key: str, now: float) -> str | None:
        blob = await self.store.get_session(key, now)
        if self.armed:
            self.armed = False
            self.fetched.set()
            await self.release.wait()
        return blob  # type: ignore[no-any-return]


async def test_a_read_begun_before_a_sign_out_here_leaves_no_copy_behind(tmp_path: Path) -> None:
    """The read fetched the verified session, the person signed out here, then the read
    ended: its copy must not become the recent one, or the forwarding paths would let the
    ended session through for the recheck's 2 seconds on the very instance that ended it
    (a review finding; it was so before reads were shared too)."""
    clock = FixedClock(NOW)
    store = open_store(f"sqlite://{tmp_path / 'g.db'}", clock=clock)
    await store.open()
    held = Held(store)
    sessions = SessionManager(held, Cipher(generate_key()), clock)  # type: ignore[arg-type]
    try:
        session = await sessions.promote(sessions.new("app"), Level.VERIFIED, "u")
        sessions.forget(session.id)
        held.armed = True
        early = asyncio.ensure_future(sessions.load(session.id, "app", recent=True))
        await held.fetched.wait()  # the read has the verified session in hand
        await sessions.sign_out(session)
        held.release.set()
        await early  # begun before the sign-out: either answer is fair for it
        assert await sessions.load(session.id, "app", recent=True) is None
    finally:
        await store.close()
