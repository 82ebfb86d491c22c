"""Fixtures for the proxy tests: the recording upstream application on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.proxy.helpers import write_users_file
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


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return write_users_file(tmp_path)
