"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web

from gateway.handlers.common import runtime
from gateway.store import StoreUnavailable


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request) -> web.Response:
    rt = runtime(request)
    problems = []
    try:
        await rt.store.ping()
    except StoreUnavailable as exc:
        problems.append(f"store: {exc}")
    if rt.policy.generation == 0:
        problems.append("policy: not loaded")
    if problems:
        return web.Response(status=503, text="\n".join(problems) + "\n")
    return web.Response(text="ready\n", headers={"Cache-Control": "no-store"})
