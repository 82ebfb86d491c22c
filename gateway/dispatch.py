"""Requests for the application go straight to the proxy; the gateway's own pages are routed.

aiohttp's Application._handle, on every request, resolves a route, looks up the middleware
chain and asks asyncio for the running loop, which costs a getpid() system call (CPython checks
for a fork). A request whose path is not under /.gateway can only end at the catch-all proxy
route, so `lean_dispatch` sends it there directly: the same middleware chain, the same handler,
the route's own Expect handling and a match info equal to the router's (shared and frozen: it
names the route and the application, nothing of the request). Everything under /.gateway, and
any path decoding to it, is routed by aiohttp as before.

Either way the proxy handler refuses a path that normalises under /.gateway (404), so no
request reaches a gateway page by the lean way. `lean_dispatch` refuses to start if a route
other than the catch-all lies outside /.gateway, as such a route would never be reached.
"""

from __future__ import annotations

import functools

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import DynamicResource, UrlMappingMatchInfo

from gateway.protocol import ServerHandler

PREFIX = "/.gateway"
CATCH_ALL = "/(?P<tail>.*)"  # the pattern aiohttp compiles "/{tail:.*}" to


class DispatchError(RuntimeError):
    """The application's routes do not have the shape lean_dispatch relies on."""


def _catch_all(app: web.Application, proxy: Handler) -> web.AbstractRoute:
    """The route serving `proxy` for every path; every other route must lie under PREFIX."""
    found: list[web.AbstractRoute] = []
    for resource in app.router.resources():
        routes = list(resource)
        if any(route.handler is proxy for route in routes):
            pattern = resource.get_info().get("pattern")
            if not isinstance(resource, DynamicResource) or getattr(pattern, "pattern", "") != (
                CATCH_ALL
            ):
                raise DispatchError(f"the proxy is served at {resource.canonical}, not every path")
            if len(routes) != 1 or routes[0].method != hdrs.METH_ANY:
                raise DispatchError("the proxy route must take every method, alone")
            found.extend(routes)
        elif not resource.canonical.startswith(PREFIX + "/"):
            raise DispatchError(f"a gateway route outside {PREFIX}/: {resource.canonical}")
    if len(found) != 1:
        raise DispatchError(f"{len(found)} catch-all proxy routes, not one")
    return found[0]


def lean_dispatch(app: web.Application, routed: ServerHandler, proxy: Handler) -> ServerHandler:
    """The request handler for app's server: `routed` (the application's own, app._handle) for
    /.gateway paths, the middleware chain around `proxy` for every other. Call it after the
    application has started (its router and middlewares are frozen then)."""
    match = UrlMappingMatchInfo({}, _catch_all(app, proxy))
    match.add_app(app)
    match.freeze()
    chain = proxy
    for middleware in reversed(app.middlewares):  # as aiohttp builds it, outermost first
        chain = functools.partial(middleware, handler=chain)
    expect = match.expect_handler

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        assert isinstance(request, web.Request)  # the application's request factory makes them
        path = request.path
        # the router's catch-all matches "/" then anything but a line feed ("." in its
        # pattern), which a target like "/x#%0A?" decodes to: such a path is routed as before
        if path.startswith(PREFIX) or "\n" in path:
            return await routed(request)
        request._match_info = match
        if request.headers.get(hdrs.EXPECT):  # 100-continue, as aiohttp's routing answers it
            answer = await expect(request)
            await request.writer.drain()
            if answer is not None:
                return answer
        return await chain(request)

    return dispatch
