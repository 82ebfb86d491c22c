"""/.gateway/metrics: this gateway's Prometheus metrics, in the text format, for the networks
the settings allow (`metrics.networks`; this machine only by default)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.clientip import client_ip, is_trusted
from gateway.handlers.shared.request import runtime


def may_read_metrics(request: web.Request) -> bool:
    """Whether this client is on the networks that may read the gateway's internals (metrics,
    and the reasons readyz gives)."""
    settings = runtime(request).settings
    address = client_ip(
        request.remote, request.headers.getall("X-Forwarded-For", []), settings.trusted_proxies
    )
    return address is not None and is_trusted(address, settings.metrics.networks)


async def metrics(request: web.Request) -> web.Response:
    rt = runtime(request)
    if not may_read_metrics(request):
        return web.Response(
            status=403,
            text="metrics are not served to this address (see metrics.networks)\n",
            headers={"Cache-Control": "no-store"},
        )
    return web.Response(
        body=rt.metrics.exposition(),
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )
