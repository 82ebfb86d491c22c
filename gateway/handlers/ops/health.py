"""Liveness and readiness for load balancers and orchestrators. Why the gateway is not ready
is told in full only to the networks that may read its metrics (`metrics.networks`)."""

from __future__ import annotations

from aiohttp import web

from gateway.handlers.ops.metrics_page import may_read_metrics
from gateway.handlers.shared.request import runtime
from gateway.store import StoreUnavailable


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request) -> web.Response:
    rt = runtime(request)
    problems = []
    try:
        await rt.store.ping()
    except StoreUnavailable as exc:
        # where the store is (host, port) only for the networks allowed to read the metrics
        problems.append(f"store: {exc}" if may_read_metrics(request) else "store: unavailable")
    if rt.policy.generation == 0:
        problems.append("policy: not loaded")
    if problems:
        return web.Response(status=503, text="\n".join(problems) + "\n")
    return web.Response(text="ready\n", headers={"Cache-Control": "no-store"})
