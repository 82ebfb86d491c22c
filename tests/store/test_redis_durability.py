"""A Redis that would lose enrolments is refused at start (issue 15, item 7): without AOF or
RDB persistence a restart forgets every enrolment, and then anyone with a user's password
enrols their own authenticator; an evicting maxmemory-policy drops keys the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.clock import system_clock
from gateway.store import StoreUnavailable, open_store
from tests.redisserver import RedisServer


@pytest.fixture
def volatile(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server started without any persistence."""
    server = RedisServer(tmp_path / "volatile").start("--appendonly", "no", "--save", "")
    yield server
    server.kill()  # nothing of it is kept: no clean shutdown (an AOF rewrite) to wait for


async def test_a_redis_without_persistence_is_refused(volatile: RedisServer) -> None:
    store = open_store(volatile.url(), system_clock)
    with pytest.raises(StoreUnavailable, match="would lose enrolments: it has no persistence"):
        await store.open()


async def test_an_evicting_redis_is_refused(volatile: RedisServer) -> None:
    with volatile.client() as client:
        client.config_set("appendonly", "yes")
        client.config_set("maxmemory-policy", "allkeys-lru")
    store = open_store(volatile.url(), system_clock)
    with pytest.raises(StoreUnavailable, match="maxmemory-policy allkeys-lru evicts keys"):
        await store.open()


async def test_the_operator_may_say_so_explicitly(volatile: RedisServer) -> None:
    store = open_store(volatile.url() + "?allow_volatile=yes", system_clock)
    await store.open()
    try:
        await store.ping()
    finally:
        await store.close()


async def test_a_persistent_redis_opens(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "kept").start()  # appendonly yes, as the suite runs it
    try:
        store = open_store(server.url(), system_clock)
        await store.open()
        await store.close()
    finally:
        server.stop()


async def test_a_redis_that_loses_its_persistence_is_refused_on_reconnecting(
    tmp_path: Path,
) -> None:
    """Checked again on every new connection: a Redis restarted (or failed over) without
    persistence is refused from then on, and taken back once it keeps its data again."""
    server = RedisServer(tmp_path / "changed").start()
    store = open_store(server.url(), system_clock)
    await store.open()
    try:
        await store.ping()
        with server.client() as admin:
            admin.config_set("appendonly", "no")
            admin.config_set("save", "")
            admin.client_kill_filter(_type="normal", skipme=True)  # as a restart would
        with pytest.raises(StoreUnavailable, match=r"would lose enrolments.*on reconnecting"):
            await store.ping()
        with pytest.raises(StoreUnavailable, match="would lose enrolments"):
            await store.get_session("k", 0.0)
        with server.client() as admin:
            admin.config_set("appendonly", "yes")
        await store.ping()
    finally:
        await store.close()
        server.kill()  # a test server: no clean shutdown (its AOF rewrite) to wait for


async def test_a_volatile_redis_allowed_explicitly_is_not_checked_on_reconnecting(
    volatile: RedisServer,
) -> None:
    store = open_store(volatile.url() + "?allow_volatile=yes", system_clock)
    await store.open()
    try:
        with volatile.client() as admin:
            admin.client_kill_filter(_type="normal", skipme=True)
        await store.ping()
    finally:
        await store.close()


async def test_a_redis_that_hides_its_configuration_says_what_to_do(tmp_path: Path) -> None:
    """A managed Redis that forbids CONFIG: the store does not open, and the message says how
    to run anyway once persistence is checked by hand."""
    server = RedisServer(tmp_path / "hidden").start("--rename-command", "CONFIG", "")
    try:
        store = open_store(server.url(), system_clock)
        with pytest.raises(StoreUnavailable, match=r"add \?allow_volatile=yes"):
            await store.open()
    finally:
        server.kill()
