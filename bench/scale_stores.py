"""Stores filled with many sessions and enrolled users, written by the gateway's own code: its
Session records (gateway.sessions: JSON, AES-GCM under the session's storage key), its
enrolment records (an authenticator app's secret encrypted as the enrolment page does) and
the store classes' own methods (gateway.store.sqlite, gateway.store.redis), so every record is
one a running gateway could have made and would read.

Fast because of how the methods are driven, not what they write: SQLite's run inside one
transaction; Redis's against a pipeline (the store's scripts and commands are queued and sent a
few thousand at a time), instead of a round trip each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.clock import system_clock
from gateway.crypto import Cipher
from gateway.factors import totp
from gateway.sessions import Session, new_id, storage_key
from gateway.store.base import Store
from gateway.store.redis import RedisStore
from gateway.store.sqlite import SqliteStore

BATCH = 2000  # Redis commands queued before they are sent
LIVE_FOR = 12 * 3600.0  # the filled sessions outlive any run (no purge or TTL during it)


async def session_cookie(store: Store, cookie_header: str) -> tuple[str, str]:
    """(cookie name, session id) of the gateway's session in a Cookie header: the cookie whose
    value is a session id the store holds."""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if value and await store.get_session(storage_key(value), system_clock()) is not None:
            return name, value
    raise RuntimeError(f"no stored session in the cookies {cookie_header[:200]!r}")


def with_session(cookie_header: str, name: str, session_id: str) -> str:
    """The Cookie header with the session cookie `name` set to `session_id`."""
    parts = []
    for part in cookie_header.split(";"):
        key, _, value = part.strip().partition("=")
        parts.append(f"{key}={session_id if key == name else value}")
    return "; ".join(parts)


class Filler:
    """Writes sessions and users through `store`'s own methods; `flush` sends what is queued
    (Redis) or commits (SQLite)."""

    def __init__(self, store: Store, cipher: Cipher, flush: Callable[[], Awaitable[object]]):
        self.store = store
        self.cipher = cipher
        self.flush = flush

    async def session(self, template: Session, user: str, now: float) -> str:
        """A verified session like `template` (the benchmark user's real one), its own id."""
        session = dataclasses.replace(
            template,
            id=new_id(),
            user=user,
            identity={**template.identity, "email": user},
            created=now,
            last_seen=now,
            idle_timeout=LIVE_FOR,
            lifetime=LIVE_FOR,
            stored=False,
        )
        key = storage_key(session.id)
        blob = self.cipher.encrypt(session.to_json(), key)
        await self.store.put_session(key, user, blob, session.expires_at())
        return session.id

    async def user(self, user: str, company: str | None, now: float, facts: dict[str, Any]) -> None:
        """An enrolled user: the record of a person seen, and an authenticator app."""
        await self.store.note_user(user, company, now, facts)
        secret = self.cipher.encrypt(totp.new_secret(), f"totp:{user}")  # as the enrolment page
        await self.store.put_enrolment(user, "totp", {"secret": secret, "created": now})


def user_name(number: int) -> str:
    return f"person{number:07d}@example.com"


async def fill(
    filler: Filler,
    template: Session,
    company: str | None,
    facts: dict[str, Any],
    sessions: int,
    users: int,
    measure: Callable[[], Awaitable[int]],
    every: int,
) -> dict[str, float]:
    """`users` enrolled users, then `sessions` sessions spread over them; the store's size
    (`measure`) before and after each, and how long each took."""
    now = system_clock()
    started, before = time.monotonic(), await measure()
    for number in range(users):
        await filler.user(user_name(number), company, now, facts)
        if number % every == every - 1:
            await filler.flush()
    await filler.flush()
    users_done, after_users = time.monotonic(), await measure()
    for number in range(sessions):
        await filler.session(template, user_name(number % max(users, 1)), now)
        if number % every == every - 1:
            await filler.flush()
    await filler.flush()
    after_sessions = await measure()
    return {
        "users": users,
        "sessions": sessions,
        "bytes_per_user": (after_users - before) / max(users, 1),
        "bytes_per_session": (after_sessions - after_users) / max(sessions, 1),
        "store_bytes": after_sessions,
        "users_seconds": users_done - started,
        "sessions_seconds": time.monotonic() - users_done,
    }


def _sqlite_size(store: SqliteStore) -> int:
    page_count = store.db.execute("PRAGMA page_count").fetchone()[0]
    return int(page_count) * int(store.db.execute("PRAGMA page_size").fetchone()[0])


async def _sqlite_fill(
    path: Path, key: str, cookie: str, sessions: int, users: int, active: int
) -> dict[str, Any]:
    store = SqliteStore(path)
    await store.open()
    cipher = Cipher(key)
    try:
        name, sid = await session_cookie(store, cookie)
        template, company, facts = await _template(store, cipher, sid)

        async def commit() -> None:
            if store.db.in_transaction:
                store.db.execute("COMMIT")
            store.db.execute("BEGIN")

        async def measure() -> int:
            if store.db.in_transaction:
                store.db.execute("COMMIT")
            return _sqlite_size(store)

        store.db.execute("BEGIN")
        filler = Filler(store, cipher, commit)
        figures = await fill(filler, template, company, facts, sessions, users, measure, 50_000)
        store.db.execute("BEGIN")
        ids = [
            await filler.session(template, template.user or "", system_clock())
            for _ in range(active)
        ]
        store.db.execute("COMMIT")
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await store.close()
    return figures | {"active_cookies": [with_session(cookie, name, i) for i in ids]}


async def _template(
    store: Store, cipher: Cipher, sid: str
) -> tuple[Session, str | None, dict[str, Any]]:
    """The benchmark user's real session, and the company and facts of their user record."""
    key = storage_key(sid)
    blob = await store.get_session(key, system_clock())
    if blob is None:
        raise RuntimeError("the signed-in session is not in the store")
    template = Session.from_json(cipher.decrypt(blob, key))
    record = await store.get_user(template.user or "")
    company = record.company if record is not None else None
    facts = dict(record.facts) if record is not None else {}
    return template, company, facts


def fill_sqlite(
    path: Path, key: str, cookie: str, sessions: int, users: int, active: int
) -> dict[str, Any]:
    """Fill the SQLite store at `path` (the gateway's, encryption key `key`, its user signed
    in with `cookie`); also `active` more sessions of that user, their Cookie headers."""
    return asyncio.run(_sqlite_fill(path, key, cookie, sessions, users, active))


async def _redis_fill(
    url: str, key: str, cookie: str, sessions: int, users: int, active: int
) -> dict[str, Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(url, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    cipher = Cipher(key)
    direct = RedisStore(lambda: (client, []), system_clock, require_durable=False)
    queued = RedisStore(lambda: (pipe, []), system_clock, require_durable=False)
    await direct.open()
    queued._client = pipe  # opened: its ping would only be queued
    try:
        name, sid = await session_cookie(direct, cookie)
        template, company, facts = await _template(direct, cipher, sid)

        async def send() -> None:
            await pipe.execute()

        async def measure() -> int:
            await pipe.execute()
            info = await client.info("memory")
            return int(info["used_memory"])

        filler = Filler(queued, cipher, send)
        figures = await fill(filler, template, company, facts, sessions, users, measure, BATCH)
        ids = [
            await filler.session(template, template.user or "", system_clock())
            for _ in range(active)
        ]
        await pipe.execute()
    finally:
        await client.aclose()
    return figures | {"active_cookies": [with_session(cookie, name, i) for i in ids]}


def fill_redis(
    url: str, key: str, cookie: str, sessions: int, users: int, active: int
) -> dict[str, Any]:
    """As fill_sqlite, for the Redis store at `url`; bytes are Redis's used_memory."""
    return asyncio.run(_redis_fill(url, key, cookie, sessions, users, active))
