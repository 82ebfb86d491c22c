"""Remembered browsers on Redis lapse by themselves: the user's hash carries a TTL from the
gateway's clock, as long as its latest entry, and a record already lapsed is not stored."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.clock import FixedClock
from gateway.store import open_store
from gateway.store.redis import RedisStore
from tests.redisserver import RedisServer

T0 = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    opened = open_store(redis_url, clock=FixedClock(T0))
    assert isinstance(opened, RedisStore)
    await opened.open()
    yield opened
    await opened.close()


async def test_remembered_browsers_carry_the_latest_ttl(
    store: RedisStore, redis_url: str, redis_server: RedisServer
) -> None:
    await store.remember_browser("u", "long", {}, T0 + 30 * DAY)
    await store.remember_browser("u", "short", {}, T0 + DAY)
    await store.remember_browser("u", "lapsed", {}, T0 - 1)  # not stored, nothing else lost
    with redis_server.client(int(redis_url.rsplit("/", 1)[1])) as client:
        (key,) = client.keys("*remembered*")
        ttl = client.pttl(key) / 1000
        fields = sorted(client.hkeys(key))
    assert 30 * DAY - 1 < ttl <= 30 * DAY
    assert fields == ["long", "short"]
