"""Fail closed (PRODUCT.md section 8): with the store unreachable, nothing protected is
forwarded, people get a clear 503 page, and bypass routes keep working."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.keys import RUNTIME
from tests.support import intercept_app

ACCESS = 'applications:\n  app:\n    - paths: ["/public/**"]\n      access: bypass\n'
COMPANY = "company: A\nmembers:\n  domains: [example.com]\n"


@pytest.fixture
async def counting_upstream() -> Any:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text=f"upstream {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app)
    await server.start_server()
    yield server, seen
    await server.close()


async def test_store_down_fails_closed(make_gateway: Any, counting_upstream: Any) -> None:
    server, seen = counting_upstream
    client = await make_gateway(
        {"app": intercept_app(str(server.make_url("")))},
        policies={"a.yaml": COMPANY, "applications.yaml": ACCESS},
    )
    await client.app[RUNTIME].store.close()  # the store is gone from under the gateway

    protected = await client.get("/invoices", headers={"Cookie": "gateway_session=abc"})
    assert protected.status == 503
    body = await protected.text()
    assert "cannot reach its session store" in body and "Traceback" not in body
    login = await client.post("/login", data={"username": "a@example.com", "password": "x"})
    assert login.status == 503
    assert "/invoices" not in seen and "/login" not in seen

    public = await client.get("/public/logo.png")
    assert public.status == 200 and await public.text() == "upstream /public/logo.png"
    ready = await client.get("/.gateway/readyz")
    assert ready.status == 503
    assert (await client.get("/.gateway/healthz")).status == 200
