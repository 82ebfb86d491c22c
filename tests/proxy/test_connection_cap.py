"""An application's open requests are capped (issue 15, item 8: a stalled application held
every descriptor of the process, and error pages then failed): past `max_connections` a request
waits up to the connect timeout, then gets the 502 page, and nothing is sent upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.proxy.helpers import BYPASS_POLICIES, bypass_app


@pytest.fixture
async def stalled() -> AsyncIterator[tuple[TestServer, asyncio.Event, list[str]]]:
    release = asyncio.Event()
    seen: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        seen.append(request.path)
        await release.wait()
        return web.Response(text="done")

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    server = TestServer(app)
    await server.start_server()
    yield server, release, seen
    release.set()
    await server.close()


async def test_a_stalled_application_gets_no_more_than_its_connections(
    make_gateway: Any, stalled: tuple[TestServer, asyncio.Event, list[str]]
) -> None:
    server, release, seen = stalled
    app = bypass_app(str(server.make_url("")), max_connections=1, timeouts={"connect": 1})
    client = await make_gateway({"app": app}, BYPASS_POLICIES)
    first = asyncio.create_task(client.get("/one"))
    while seen != ["/one"]:
        await asyncio.sleep(0.01)
    refused = await client.get("/two")
    assert refused.status == 502
    assert seen == ["/one"]  # the second never reached the application
    release.set()
    assert (await first).status == 200
    assert (await client.get("/three")).status == 200
