"""The recording upstream application on a real port (tests/proxy/upstream.py), for any test
module: the proxy tests and the security suite attack the gateway in front of it. A module that
defines its own `upstream` fixture uses that one instead."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.proxy.upstream import create_upstream


@pytest.fixture
async def upstream() -> AsyncIterator[TestServer]:
    server = TestServer(create_upstream(), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def upstream_url(upstream: TestServer) -> str:
    return str(upstream.make_url("")).rstrip("/")
