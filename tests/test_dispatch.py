"""gateway.dispatch: requests outside /.gateway go straight to the proxy's middleware chain and
handler, exactly as aiohttp's router would have sent them; /.gateway is routed as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from gateway.dispatch import DispatchError, lean_dispatch
from gateway.protocol import EdgeRunner, ServerHandler
from gateway.settings import Listen

SEEN = web.AppKey("seen", list)
TAG = web.RequestKey("tag", str)


@web.middleware
async def tagging(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[TAG] = "middleware ran"
    return await handler(request)


async def proxy(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    request.app[SEEN].append(
        (request.path, request.get(TAG), request.match_info.route.handler is proxy, body)
    )
    return web.Response(text=f"proxied {request.path}")


async def page(request: web.Request) -> web.StreamResponse:
    return web.Response(text=f"page {request.get(TAG)}")


def small_app(*extra: tuple[str, str]) -> web.Application:
    app = web.Application(middlewares=[tagging])
    app[SEEN] = []
    app.router.add_get("/.gateway/page", page)
    for method, path in extra:
        app.router.add_route(method, path, page)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app


Serve = Callable[[web.Application], Awaitable[tuple[str, list[str]]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve an app with the edge runner and the lean dispatch; (url, paths the router saw)."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> tuple[str, list[str]]:
        routed_paths: list[str] = []

        def dispatch(started: web.Application, routed: ServerHandler) -> ServerHandler:
            async def counting(request: web.BaseRequest) -> web.StreamResponse:
                routed_paths.append(request.path)
                return await routed(request)

            return lean_dispatch(started, counting, proxy)

        runner = EdgeRunner(app, Listen(port=0), dispatch=dispatch, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}", routed_paths

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_an_application_path_skips_the_router_but_not_the_middlewares(serve: Serve) -> None:
    app = small_app()
    url, routed = await serve(app)
    async with aiohttp.ClientSession() as client, client.get(url + "/reports/1?x=2") as answer:
        assert (answer.status, await answer.text()) == (200, "proxied /reports/1")
    assert app[SEEN] == [("/reports/1", "middleware ran", True, b"")]
    assert routed == []


@pytest.mark.parametrize("path", ["/.gateway/page", "/%2Egateway/page", "/%2egateway/page"])
async def test_gateway_paths_are_routed_as_aiohttp_reads_them(serve: Serve, path: str) -> None:
    """Whatever spelling the router decodes to a gateway page is that page, as before."""
    app = small_app()
    url, routed = await serve(app)
    target = URL(url + path, encoded=True)
    async with aiohttp.ClientSession() as client, client.get(target) as answer:
        assert (answer.status, await answer.text()) == (200, "page middleware ran")
    assert routed == ["/.gateway/page"]
    assert app[SEEN] == []


async def test_an_unknown_gateway_path_is_routed_to_the_catch_all(serve: Serve) -> None:
    app = small_app()
    url, routed = await serve(app)
    async with aiohttp.ClientSession() as client, client.get(url + "/.gateway/nothing") as answer:
        assert answer.status == 200
    assert routed == ["/.gateway/nothing"]
    assert app[SEEN] == [("/.gateway/nothing", "middleware ran", True, b"")]


async def test_a_path_the_catch_all_does_not_match_is_routed(serve: Serve) -> None:
    """A line feed decoded into the path ("#%0A" before a "?" in the target) is beyond the
    catch-all's "." : the router answers it (404), as it did before the lean way."""
    app = small_app()
    url, routed = await serve(app)
    request = b"GET /public/x#%0A? HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = await exchange(url, request)
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:100]
    assert routed == ["/public/x#\n"]
    assert app[SEEN] == []


async def exchange(url: str, request: bytes, first: bytes = b"") -> bytes:
    """Write `request`; once `first` has been read (if given) write what follows it."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head, _, rest = request.partition(b"\r\n\r\n")
        writer.write(head + b"\r\n\r\n")
        got = b""
        if first:
            got = await asyncio.wait_for(reader.readuntil(first), 10)
        writer.write(rest)
        return got + await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_expect_100_continue_is_answered_before_the_body(serve: Serve) -> None:
    """The client waits for 100 Continue before sending its body, as through the router."""
    app = small_app()
    url, _ = await serve(app)
    request = (
        b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\nhello"
    )
    answer = await exchange(url, request, first=b"HTTP/1.1 100 Continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert app[SEEN] == [("/upload", "middleware ran", True, b"hello")]


async def test_another_expectation_is_refused_as_the_router_refuses_it(serve: Serve) -> None:
    app = small_app()
    url, _ = await serve(app)
    request = b"GET /x HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nConnection: close\r\n\r\n"
    answer = await exchange(url, request)
    assert answer.startswith(b"HTTP/1.1 417 "), answer[:100]
    assert app[SEEN] == []


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ([("GET", "/health")], "outside /.gateway/: /health"),
        ([("GET", "/.gatewayx")], "outside /.gateway/: /.gatewayx"),
    ],
)
def test_a_route_the_lean_way_would_hide_stops_the_start(
    extra: list[tuple[str, str]], why: str
) -> None:
    """Such a route would never be reached (its requests would go to the proxy): a mistake in
    the gateway's own routes, refused when the server starts rather than a page gone quietly."""
    with pytest.raises(DispatchError, match=why):
        lean_dispatch(small_app(*extra), proxy, proxy)


def test_without_one_catch_all_proxy_route_it_refuses() -> None:
    app = web.Application()
    app.router.add_get("/.gateway/page", page)
    with pytest.raises(DispatchError, match="0 catch-all"):
        lean_dispatch(app, proxy, proxy)
    for narrower in ("/app/{tail:.*}", "/{tail:x.*}", "/{tail:[^.].*}"):
        narrow = web.Application()
        narrow.router.add_route("*", narrower, proxy)
        with pytest.raises(DispatchError, match="not every path"):
            lean_dispatch(narrow, proxy, proxy)
    get_only = web.Application()
    get_only.router.add_get("/{tail:.*}", proxy, allow_head=False)
    with pytest.raises(DispatchError, match="every method"):
        lean_dispatch(get_only, proxy, proxy)


def test_the_gateways_own_routes_have_the_shape(tmp_path: Any) -> None:
    """Every gateway route lies under /.gateway/ and the proxy takes every other path."""
    from gateway.app import build_runtime, create_app
    from gateway.handlers.entry.proxy import proxy_handler
    from gateway.policy.model import Policy
    from gateway.settings import settings_from_dict
    from tests.support import portal_app, settings_dict

    users = tmp_path / "users.yaml"
    users.write_text("users: {}\n")
    data = settings_dict(tmp_path, {"app": portal_app("http://127.0.0.1:1", users)})
    settings = settings_from_dict(data, source=tmp_path / "gateway.yaml")
    app = create_app(build_runtime(settings, Policy.EMPTY))

    async def never(request: web.BaseRequest) -> web.StreamResponse:
        raise AssertionError

    assert callable(lean_dispatch(app, never, proxy_handler))
