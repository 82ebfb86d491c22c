"""Running the gateway: load settings and policy, listen, reload the policy on SIGHUP, stop
cleanly on SIGINT or SIGTERM."""

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


async def serve(
    settings: Settings, ready: Callable[[str], None] | None = None, reuse_port: bool = False
) -> None:
    """Serve until SIGINT or SIGTERM. `reuse_port`: one of several workers sharing the address
    (gateway.workers), each with its own listening socket."""
    if reuse_port:
        from gateway.workers import become_worker

        become_worker()
    names = [application.name for application in settings.applications]
    policy = load_policy_dir(settings.policy_dir, known_apps=names)
    runtime = build_runtime(settings, policy)
    app = create_app(runtime)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    tls = ssl_context(settings)
    site = web.TCPSite(
        runner,
        settings.listen.host,
        settings.listen.port,
        ssl_context=tls,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    await site.start()
    scheme = "https" if tls else "http"
    url = f"{scheme}://{settings.listen.host}:{settings.listen.port}/"
    log.info("gateway listening on %s for %s", url, ", ".join(names))
    if ready is not None:
        ready(url)
    stop = asyncio.Event()

    def on_stop(sig: signal.Signals) -> None:
        log.info("%s received: stopping", sig.name)
        stop.set()

    def on_reload(sig: signal.Signals) -> None:
        log.info("%s received: reloading the policy files", sig.name)
        if runtime.reloader is not None:
            runtime.reloader.request_reload(sig.name)

    loop = asyncio.get_running_loop()
    handled = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop, signal.SIGHUP: on_reload}
    for sig, handler in handled.items():
        loop.add_signal_handler(sig, handler, sig)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        log.info("gateway stopping")
        await runner.cleanup()
