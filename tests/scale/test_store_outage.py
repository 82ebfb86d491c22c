"""Fail closed on Redis (PRODUCT.md section 8): a `gateway run` process whose redis-server dies
forwards nothing protected, answers with the 503 page, keeps bypass routes working and says it
is not ready; when Redis comes back on its port, the same session works again, no restart.

A verified session read from the store is believed for `RECHECK_AFTER` seconds (gateway/
sessions.py), so the gateway fails closed once that has passed since the last read: the same
bound as a logout made elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.identity.portal import hash_password
from gateway.sessions import RECHECK_AFTER
from tests.redisserver import RedisServer
from tests.scale.flows import browser, enrol_totp
from tests.support import GatewayProcess, portal_app, portal_login, settings_dict

ACCESS = 'applications:\n  app:\n    - paths: ["/public/**"]\n      access: bypass\n'
COMPANY = "company: A\nmembers:\n  domains: [example.com]\nenforce_2fa: true\n"
USER, PASSWORD = "dana@example.com", "dana-password"


@pytest.fixture
async def counting_upstream() -> AsyncIterator[tuple[TestServer, list[str]]]:
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text=f"upstream {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, seen
    await server.close()


async def test_redis_down_fails_closed_and_recovers(counting_upstream: Any, tmp_path: Path) -> None:
    server, seen = counting_upstream
    redis = RedisServer(tmp_path / "redis").start()
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_password(PASSWORD)}'\n")
    settings = settings_dict(
        tmp_path,
        {"app": portal_app(str(server.make_url("")), users)},
        {"a.yaml": COMPANY, "applications.yaml": ACCESS},
        store=redis.url(),
    )
    gateway = GatewayProcess.run(tmp_path, settings)
    try:
        async with browser() as session:
            session_base = gateway.url
            login = await portal_login(_At(session, session_base), USER, PASSWORD)
            assert login.status == 303
            await enrol_totp(session, session_base + login.headers["Location"])
            async with session.get(f"{session_base}/invoices") as ok:
                assert ok.status == 200 and await ok.text() == "upstream /invoices"
            seen.clear()

            redis.kill()
            await asyncio.sleep(RECHECK_AFTER)
            async with session.get(f"{session_base}/invoices", allow_redirects=False) as down:
                assert down.status == 503
                body = await down.text()
                assert "cannot reach its session store" in body and "Traceback" not in body
            assert seen == []  # nothing protected was forwarded
            async with session.get(f"{session_base}/public/logo.png") as public:
                assert public.status == 200
                assert await public.text() == "upstream /public/logo.png"
            async with session.get(f"{session_base}/.gateway/readyz") as ready:
                assert ready.status == 503
                assert "store" in await ready.text()

            redis.start()
            async with session.get(f"{session_base}/invoices", allow_redirects=False) as back:
                assert back.status == 200 and await back.text() == "upstream /invoices"
            async with session.get(f"{session_base}/.gateway/readyz") as ready:
                assert ready.status == 200
    finally:
        gateway.stop()
        redis.stop()


class _At:
    """portal_login's client: relative URLs against one base, with this browser's cookies."""

    def __init__(self, session: Any, base: str) -> None:
        self.session, self.base = session, base

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.session.get(self.base + path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Any:
        return await self.session.post(self.base + path, **kwargs)
