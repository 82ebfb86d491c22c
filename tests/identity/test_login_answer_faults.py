"""A refused login whose answer sets a session cookie (PHP starts a session on a wrong password
too) while the store fails at the moment the cookie is held: the 503 page goes back, and the
application's answer, still arriving, is closed, not left open for the garbage collector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.keys import RUNTIME
from gateway.store import StoreUnavailable
from tests.support import intercept_app


@pytest.fixture
async def php_like() -> AsyncIterator[TestServer]:
    async def login(request: web.Request) -> web.StreamResponse:
        await request.post()
        response = web.StreamResponse()
        response.set_cookie("legacy_session", "fresh", path="/")
        response.content_type = "text/html"
        await response.prepare(request)
        await response.write(b"Invalid email or password." + b" " * 65536)
        await asyncio.sleep(5)  # the rest of the page is slow to come: the answer is open
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/login", login)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_a_failed_hold_closes_the_application_answer(
    make_gateway: Any, php_like: TestServer
) -> None:
    client = await make_gateway({"app": intercept_app(str(php_like.make_url("")).rstrip("/"))})
    sessions = client.app[RUNTIME].sessions

    async def store_gone(*_: Any, **__: Any) -> bool:
        raise StoreUnavailable("the store went away")

    sessions.save = store_gone
    answer = await client.post("/login", data={"username": "alice@example.com", "password": "x"})
    assert answer.status == 503
    assert "cannot reach its session store" in await answer.text()
    connector = client.app[RUNTIME].upstream.connector
    assert connector is not None
    assert not connector._acquired, "the application's answer is still open"
