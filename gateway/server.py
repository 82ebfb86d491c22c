"""Running the gateway: load settings and policy, listen, reload the policy on SIGHUP, stop
cleanly on SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.app import build_runtime, create_app
from gateway.dispatch import lean_dispatch
from gateway.handlers.entry.proxy import proxy_handler
from gateway.parser import check_parser
from gateway.policy import load_policy_dir
from gateway.protocol import EdgeRunner
from gateway.settings import Listen, Settings

log = logging.getLogger("gateway")


def ssl_context(listen: Listen) -> ssl.SSLContext | None:
    if listen.tls_cert is None or listen.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(listen.tls_cert, listen.tls_key)
    return context


async def start(
    app: web.Application, listen: Listen, reuse_port: bool = False
) -> tuple[web.AppRunner, str]:
    """Run `app` on the address `listen` names, every connection held to its limits
    (gateway.protocol); returns the runner (to clean up) and the URL served."""
    runner = edge_runner(app, listen)
    await runner.setup()
    tls = ssl_context(listen)
    site = web.TCPSite(
        runner,
        listen.host,
        listen.port,
        ssl_context=tls,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    try:
        await site.start()
    except BaseException:  # the address is taken, say: undo what setup opened (store, client)
        await runner.cleanup()
        raise
    port = listen.port or runner.addresses[0][1]
    return runner, f"{'https' if tls else 'http'}://{listen.host}:{port}/"


def edge_runner(app: web.Application, listen: Listen, **kwargs: Any) -> EdgeRunner:
    """The runner serving `app`: every connection held to `listen`'s limits (gateway.protocol),
    requests for the applications sent straight to the proxy (gateway.dispatch)."""
    kwargs.setdefault("access_log", None)
    return EdgeRunner(
        app,
        listen,
        dispatch=lambda started, routed: lean_dispatch(started, routed, proxy_handler),
        handle_signals=False,
        max_line_size=listen.max_header_size,
        max_field_size=listen.max_header_size,
        max_headers=listen.max_headers,
        # Bodies go upstream as the client encoded them; decoding one here would forward the
        # decoded bytes under the client's Content-Encoding.
        auto_decompress=False,
        **kwargs,
    )


def raise_open_file_limit() -> None:
    """Every connection holds a descriptor (two when forwarded): the soft limit is raised to
    the hard one at start, and said so, rather than running out under load."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
            if target > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                log.info("open-file limit raised from %d to %d (the hard limit)", soft, target)
                return
        log.info("open-file limit: %d", soft)
    except (ValueError, OSError) as exc:
        log.warning("the open-file limit could not be raised: %s", exc)


async def serve(
    settings: Settings, ready: Callable[[str], None] | None = None, reuse_port: bool = False
) -> None:
    """Serve until SIGINT or SIGTERM. `reuse_port`: one of several workers sharing the address
    (gateway.workers), each with its own listening socket."""
    if reuse_port:
        from gateway.workers import become_worker

        become_worker()
    check_parser()
    raise_open_file_limit()
    names = [application.name for application in settings.applications]
    policy = load_policy_dir(settings.policy_dir, known_apps=names)
    runtime = build_runtime(settings, policy)
    runner, url = await start(create_app(runtime), settings.listen, reuse_port)
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
