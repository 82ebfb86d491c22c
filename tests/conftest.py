"""Fixtures: an upstream application and a gateway built in-process around it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import build_runtime, create_app
from gateway.clock import FixedClock
from gateway.demo.legacy import create_legacy_app
from gateway.policy import load_policy_dir
from gateway.settings import settings_from_dict
from tests.support import settings_dict

LEGACY_ACCOUNTS = {"alice@example.com": "alice-password", "bob@example.com": "bob-password"}

GatewayFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def legacy_server() -> Any:
    """The demo's legacy application (its own login form and session cookie) on a real port."""
    server = TestServer(create_legacy_app(LEGACY_ACCOUNTS))
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def make_gateway(
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> GatewayFactory:
    """A gateway in this test's loop: make_gateway(applications, policies=..., clock=...)."""

    async def factory(
        applications: dict[str, Any],
        policies: dict[str, str] | None = None,
        clock: FixedClock | None = None,
        **extra: Any,
    ) -> TestClient[web.Request, web.Application]:
        data = settings_dict(tmp_path, applications, policies, **extra)
        settings = settings_from_dict(data, source=tmp_path / "gateway.yaml")
        policy = load_policy_dir(
            settings.policy_dir, known_apps=[a.name for a in settings.applications]
        )
        runtime = (
            build_runtime(settings, policy, clock=clock)
            if clock
            else build_runtime(settings, policy)
        )
        return await aiohttp_client(create_app(runtime))

    return factory
