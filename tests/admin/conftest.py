"""The admin tests' gateway: the upstream of tests/admin/helpers.py, a fixed clock, and the
gateway in front of it (a module that needs other settings defines its own `client`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.clock import FixedClock
from tests.admin.helpers import NOW, Client, gateway, upstream


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    served = await upstream()
    yield served
    await served.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
async def client(
    make_gateway: Any, tmp_path: Path, server: TestServer, clock: FixedClock
) -> Client:
    return await gateway(make_gateway, tmp_path, server, clock)
