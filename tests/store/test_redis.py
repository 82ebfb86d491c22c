"""What only the Redis backend has to show: TTLs, errors without passwords, reconnection after a
restart, and its URL forms (Sentinel through a real redis-sentinel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.clock import FixedClock
from gateway.store import StoreUnavailable, open_store
from gateway.store.redis import RedisStore
from tests.redisserver import RedisServer, SentinelServer
from tests.support import free_port

T0 = 1_800_000_000.0
DAY = 86400.0
PASSWORD = "s3cret-hunter2"


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = open_store(redis_url, clock=FixedClock(T0))
    assert isinstance(opened, RedisStore)
    await opened.open()
    yield opened
    await opened.close()


async def test_expiring_data_has_ttls_from_the_gateways_clock(
    store: RedisStore, redis_url: str, redis_server: RedisServer
) -> None:
    """Sessions, codes, failures, sends and deferrals carry TTLs (their times minus the
    gateway's clock); enrolments, TOTP steps and the ratchet stay for good."""
    await store.put_session("k", "u", "blob", expires_at=T0 + 600)
    await store.put_code("sms:k", {"d": 1}, T0 + 300)
    await store.record_failure("user:u", T0 - 100)
    assert await store.reserve_send("u", T0, 30, 5)
    await store.put_deferral("u", "acme", T0, T0 + 2 * DAY)
    await store.put_enrolment("u", "totp", {"secret": "x"})
    assert await store.claim_totp_step("u", 5)
    assert await store.enforce("acme", T0, "policy")
    with redis_server.client(int(redis_url.rsplit("/", 1)[1])) as client:
        ttls = {key: client.pttl(key) / 1000 for key in client.keys("*")}
    by_kind = {key.split(":")[1]: ttl for key, ttl in ttls.items()}
    assert 599 < by_kind["session"] <= 600
    assert 599 < by_kind["user-sessions"] <= 600
    assert 299 < by_kind["code"] <= 300
    assert DAY - 101 < by_kind["failures"] <= DAY - 100
    assert DAY - 1 < by_kind["sends"] <= DAY
    assert 2 * DAY - 1 < by_kind["deferral"] <= 2 * DAY
    assert 2 * DAY - 1 < by_kind["deferrals"] <= 2 * DAY
    for lasting in ("enrolments", "totp-step", "enforcement"):
        assert by_kind[lasting] == -0.001  # PTTL -1: no expiry


async def test_past_expiry_is_not_stored(store: RedisStore) -> None:
    """A session or code already expired by the gateway's clock is not kept at all."""
    await store.put_session("k", "u", "blob", expires_at=T0 + 60)
    await store.put_session("k", "u", "blob", expires_at=T0 - 1)
    await store.put_code("sms:k", {"d": 1}, T0 - 1)
    assert await store.get_session("k", T0 - 100) is None
    assert await store.get_code("sms:k", T0 - 100) is None


async def test_refused_connection_is_store_unavailable_without_password() -> None:
    """Nothing listening: StoreUnavailable, and the password of the URL is not in the message."""
    store = open_store(f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0", clock=FixedClock(T0))
    with pytest.raises(StoreUnavailable) as refused:
        await store.open()
    assert "Redis store error" in str(refused.value)
    assert PASSWORD not in str(refused.value)


async def test_wrong_password_is_store_unavailable_without_password(tmp_path: Path) -> None:
    """A server that wants another password: StoreUnavailable naming no password."""
    server = RedisServer(tmp_path / "redis", password="the-right-one").start()
    try:
        wrong = open_store(f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0", FixedClock(T0))
        with pytest.raises(StoreUnavailable) as refused:
            await wrong.open()
        assert PASSWORD not in str(refused.value) and "the-right-one" not in str(refused.value)
        right = open_store(server.url(), FixedClock(T0))
        await right.open()
        await right.put_enrolment("u", "totp", {"secret": "x"})
        assert await right.list_methods("u") == ["totp"]
        await right.close()
    finally:
        server.stop()


async def test_store_reconnects_after_redis_restarts(tmp_path: Path) -> None:
    """Redis killed: every call fails with StoreUnavailable. Started again on its port: the same
    store object works again and the data written before the kill is there."""
    server = RedisServer(tmp_path / "redis").start()
    store = open_store(server.url(), FixedClock(T0))
    try:
        await store.open()
        await store.put_session("k", "u", "blob", expires_at=T0 + 600)
        server.kill()
        with pytest.raises(StoreUnavailable):
            await store.get_session("k", T0)
        with pytest.raises(StoreUnavailable):
            await store.ping()
        server.start()
        assert await store.get_session("k", T0) == "blob"
        await store.ping()
    finally:
        await store.close()
        server.stop()


def test_url_forms_and_refusals() -> None:
    """Redis, TLS, Sentinel and cluster URLs open a Redis store; malformed ones are refused
    naming the scheme and never the password."""
    clock = FixedClock(T0)
    for url in (
        "redis://127.0.0.1:6379/0",
        "rediss://:pw@redis.example:6380/2?socket_timeout=0.5",
        "redis+sentinel://:pw@s1:26379,s2:26380/mymaster/3",
        "redis+cluster://10.0.0.1:7000",
    ):
        assert isinstance(open_store(url, clock), RedisStore)
    for bad in (
        f"redis+sentinel://:{PASSWORD}@s1:26379",  # no service name
        f"redis://:{PASSWORD}@host:6379/0?colour=blue",
        f"redis://:{PASSWORD}@host:6379/0?socket_timeout=soon",
    ):
        with pytest.raises(StoreUnavailable, match="malformed") as refused:
            open_store(bad, clock)
        assert PASSWORD not in str(refused.value)


async def test_sentinel_url_finds_the_master(redis_server: RedisServer, tmp_path: Path) -> None:
    """redis+sentinel://host:port/service/db asks a real redis-sentinel where the master is."""
    sentinel = SentinelServer(tmp_path / "sentinel", redis_server.port, "gw").start()
    try:
        store = open_store(f"redis+sentinel://127.0.0.1:{sentinel.port}/gw/0", FixedClock(T0))
        await store.open()
        await store.put_enrolment("sentinel-user", "totp", {"secret": "x"})
        await store.close()
        with redis_server.client(0) as client:
            assert client.hkeys("gateway:enrolments:{sentinel-user}") == ["totp"]
            client.flushdb()
    finally:
        sentinel.stop()
