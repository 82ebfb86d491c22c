"""A provider that is down, or slow to say so: one request to it at a time, whoever asks (the
others wait for its answer), and a failure remembered a few seconds, so a crowd at the login
page is no crowd at the provider and a slow provider does not hold each request in turn. The
provider here is a small aiohttp server of the test's own that counts what it is asked."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.identity.oidc import ProviderError, parse_discovery
from gateway.oidc_client import OidcClient
from gateway.settings.model import SecretSource
from gateway.settings.oidc import Oidc
from tests.oidc.support import oidc_app
from tests.support import DEFAULT_POLICY


@dataclass
class Down:
    """A provider whose discovery document and keys answer 503, after `delay` seconds."""

    server: TestServer
    hits: Counter[str] = field(default_factory=Counter)
    delay: float = 0.0

    @property
    def issuer(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def down() -> AsyncIterator[Down]:
    app = web.Application()
    state = Down(TestServer(app))

    async def answer(request: web.Request) -> web.Response:
        state.hits[request.path] += 1
        await asyncio.sleep(state.delay)
        return web.Response(status=503, text="down for maintenance")

    app.router.add_get("/{tail:.*}", answer)
    await state.server.start_server()
    yield state
    await state.server.close()


async def logins(client: Any, count: int) -> list[int]:
    answers = await asyncio.gather(
        *(client.get("/.gateway/login?rd=/", allow_redirects=False) for _ in range(count))
    )
    return [answer.status for answer in answers]


async def test_a_provider_down_is_asked_once_by_a_crowd_and_not_again_at_once(
    make_gateway: Any, upstream_url: str, tmp_path: Path, down: Down, monkeypatch: Any
) -> None:
    """Twenty visits at once to the login page of a provider that is slow to answer 503 (half a
    second): one request to the provider, all twenty get the 503 page within about that half
    second (not one after the other), and twenty more just after ask it nothing; once the pause
    is over the next visit asks again."""
    monkeypatch.setattr("gateway.oidc_client.FAILURE_PAUSE", 1.5, raising=False)
    down.delay = 0.5
    app = oidc_app(upstream_url, down.issuer, tmp_path / "client-secret")
    client = await make_gateway({"legacy": app}, policies={"example.yaml": DEFAULT_POLICY})
    await asyncio.sleep(2.2)  # the fetch begun at start failed, and its pause is over
    down.hits.clear()
    began = time.monotonic()
    assert await logins(client, 20) == [503] * 20
    assert time.monotonic() - began < 1.5
    assert down.hits["/.well-known/openid-configuration"] == 1
    assert await logins(client, 20) == [503] * 20
    assert down.hits["/.well-known/openid-configuration"] == 1
    await asyncio.sleep(1.6)
    down.hits.clear()
    assert await logins(client, 5) == [503] * 5
    assert down.hits["/.well-known/openid-configuration"] == 1


async def test_keys_that_cannot_be_fetched_are_asked_once_by_a_crowd(
    down: Down, monkeypatch: Any
) -> None:
    """The keys (JWKS) of a provider that answers 503: concurrent callbacks wait for one request,
    and its failure is remembered a moment, for the first fetch as for a fetch again after a
    rotation."""
    monkeypatch.setattr("gateway.oidc_client.FAILURE_PAUSE", 60.0, raising=False)
    down.delay = 0.2
    settings = Oidc(down.issuer, "gateway", SecretSource(env="UNUSED"), timeout=5.0)
    client = OidcClient(settings, "secret")
    discovery = parse_discovery(
        {
            "issuer": down.issuer,
            "authorization_endpoint": f"{down.issuer}/auth",
            "token_endpoint": f"{down.issuer}/token",
            "jwks_uri": f"{down.issuer}/jwks",
        },
        down.issuer,
    )
    try:
        for refetch in (False, True, False):
            outcomes = await asyncio.gather(
                *(client.keys(discovery, refetch=refetch) for _ in range(10)),
                return_exceptions=True,
            )
            assert all(isinstance(outcome, ProviderError) for outcome in outcomes), outcomes
        assert down.hits["/jwks"] == 1
    finally:
        await client.close()
