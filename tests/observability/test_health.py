"""healthz says the process is alive; readyz fails (503) while the store cannot be reached or
no policy is loaded, and says which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from gateway.keys import RUNTIME
from gateway.policy import PolicyHolder
from tests.support import portal_app


async def test_ready_when_the_store_answers_and_a_policy_is_loaded(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    client = await make_gateway({"app": portal_app(str(upstream.make_url("")), users)})
    ready = await client.get("/.gateway/readyz", headers={"Host": "any.example"})
    assert ready.status == 200 and await ready.text() == "ready\n"


async def test_not_ready_with_the_store_down(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    client = await make_gateway({"app": portal_app(str(upstream.make_url("")), users)})
    await client.app[RUNTIME].store.close()
    ready = await client.get("/.gateway/readyz")
    assert ready.status == 503 and (await ready.text()).startswith("store: ")
    assert (await client.get("/.gateway/healthz")).status == 200


async def test_not_ready_without_a_policy(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    client = await make_gateway({"app": portal_app(str(upstream.make_url("")), users)})
    client.app[RUNTIME].policy = PolicyHolder()  # nothing loaded yet (generation 0)
    ready = await client.get("/.gateway/readyz")
    assert ready.status == 503 and await ready.text() == "policy: not loaded\n"
    assert (await client.get("/.gateway/healthz")).status == 200


async def test_why_the_store_is_down_is_told_only_to_the_metrics_networks(
    make_gateway: Any, upstream: TestServer, users: Path
) -> None:
    """The store's error names its host and port: a client outside `metrics.networks` (here
    one a trusted proxy names) hears only that the store is unavailable."""
    client = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)}, trusted_proxies=["127.0.0.1/32"]
    )
    await client.app[RUNTIME].store.close()
    outside = await client.get("/.gateway/readyz", headers={"X-Forwarded-For": "192.0.2.9"})
    assert outside.status == 503 and await outside.text() == "store: unavailable\n"
    inside = await client.get("/.gateway/readyz", headers={"X-Forwarded-For": "127.0.0.1"})
    assert inside.status == 503
    detail = await inside.text()
    assert detail.startswith("store: ") and detail != "store: unavailable\n"
