"""Running the gateway: load settings and policy, listen, stop cleanly on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable

from aiohttp import web

from gateway.app import build_runtime, create_app
from gateway.policy import load_policy_dir
from gateway.settings import Settings

log = logging.getLogger("gateway")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    listen = settings.listen
    if listen.tls_cert is None or listen.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(listen.tls_cert, listen.tls_key)
    return context


async def serve(settings: Settings, ready: Callable[[str], None] | None = None) -> None:
    names = [application.name for application in settings.applications]
    policy = load_policy_dir(settings.policy_dir, known_apps=names)
    runtime = build_runtime(settings, policy)
    app = create_app(runtime)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    tls = ssl_context(settings)
    site = web.TCPSite(
        runner, settings.listen.host, settings.listen.port, ssl_context=tls, reuse_address=True
    )
    await site.start()
    scheme = "https" if tls else "http"
    url = f"{scheme}://{settings.listen.host}:{settings.listen.port}/"
    log.info("gateway listening on %s for %s", url, ", ".join(names))
    if ready is not None:
        ready(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("gateway stopping")
        await runner.cleanup()
