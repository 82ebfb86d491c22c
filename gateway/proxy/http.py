"""Forwarding one HTTP request upstream and streaming the answer back, bodies never buffered."""

from __future__ import annotations

import functools
import io
import logging
import time
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.errors import UpstreamTimeout, UpstreamUnreachable
from gateway.memo import remembered
from gateway.proxy import client as lean
from gateway.proxy import splice
from gateway.proxy.headers import clean_response_headers

log = logging.getLogger("gateway.proxy")

CHUNK = 64 * 1024
NO_BODY = (204, 304)
# aiohttp adds these unless told not to; the upstream must see what the client sent.
_SKIP_AUTO = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class Upstream(Protocol):
    """An upstream's answer being relayed: aiohttp's ClientResponse or the lean client's."""

    status: int
    reason: str | None

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def content(self) -> aiohttp.StreamReader: ...
    def release(self) -> object: ...
    def close(self) -> None: ...


class Timing(Protocol):
    """Where the time to an upstream's response headers goes (gateway.metrics)."""

    def observe(self, seconds: float) -> None: ...
    def failed(self, reason: str) -> None: ...  # "timeout" or "unreachable"


def new_client() -> aiohttp.ClientSession:
    """The one pooled upstream client: no cookie jar, no decompression, no redirects."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=60)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None),
        skip_auto_headers=_SKIP_AUTO,
    )


def upstream_url(base: str, encoded_path: str, query: str) -> URL:
    return _url(f"{base.rstrip('/')}{encoded_path}{'?' + query if query else ''}")


# the same addresses are asked for again and again; a URL is immutable, so it can be shared
_url = remembered(entries=1024, longest=512)(functools.partial(URL, encoded=True))


@functools.lru_cache(maxsize=64)  # one per application's settings, not one per request
def timeouts(connect: float, read: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, connect=connect, sock_read=read)


async def open_upstream(
    client: aiohttp.ClientSession,
    method: str,
    url: URL,
    headers: CIMultiDict[str],
    body: aiohttp.StreamReader | bytes | None,
    timeout: aiohttp.ClientTimeout,
    timing: Timing | None = None,
    pool: lean.Pool | None = None,
) -> Upstream:
    """Send the request; the caller owns (and must release) the response. `timing` hears how
    long the response headers took, or why there are none. GET and HEAD without a body go
    through `pool` when there is one (gateway.proxy.client), everything else through aiohttp."""
    start = time.perf_counter()
    response: Upstream
    try:
        if pool is not None and body is None and method in lean.METHODS:
            connect, read = timeout.sock_connect, timeout.sock_read
            response = await pool.send(method, url, headers, connect, read)
        else:
            # a body read already (intercept checks): over 1 MiB aiohttp wants it as a stream
            data = io.BytesIO(body) if isinstance(body, bytes) and len(body) > 2**20 else body
            response = await client.request(
                method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
                chunked=None,
            )
    except TimeoutError as exc:
        if timing is not None:
            timing.failed("timeout")
        raise UpstreamTimeout(str(url.origin())) from exc
    except (aiohttp.ClientError, OSError) as exc:
        if timing is not None:
            timing.failed("unreachable")
        raise UpstreamUnreachable(str(url.origin()), str(exc)) from exc
    if timing is not None:
        timing.observe(time.perf_counter() - start)
    return response


def request_body(request: web.Request) -> aiohttp.StreamReader | None:
    return request.content if request.body_exists else None


def response_headers(upstream: Upstream, base: str) -> CIMultiDict[str]:
    headers = clean_response_headers(upstream.headers)
    location = headers.get("Location")
    if location:
        headers["Location"] = relative_to_upstream(location, base)
    return headers


def relative_to_upstream(location: str, base: str) -> str:
    """An absolute redirect to the upstream's own address becomes a path, so the browser stays on
    the gateway; every other Location is left as the application wrote it."""
    try:
        target, origin = URL(location), URL(base)
    except ValueError:
        return location
    # "//host/x" is absolute but has no scheme (and no origin()): the browser resolves it against
    # the gateway's own scheme, so it is another host's address, left as it is
    if target.is_absolute() and target.scheme and target.origin() == origin.origin():
        # "//host/..." as a path would be read by the browser as another site: the gateway
        # collapses empty segments in request paths anyway, so one "/" names the same page.
        path = "/" + target.raw_path_qs.lstrip("/")
        return path + (f"#{target.raw_fragment}" if target.raw_fragment else "")
    return location


class WholeResponse(web.Response):
    """An upstream answer sent back in one write; its body is let go once sent (aiohttp keeps
    the last response of a keep-alive connection until the next request)."""

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(data)
        self._body = None


def _has_body(request: web.Request, upstream: Upstream) -> bool:
    """Whether a body follows the headers: never for HEAD, 1xx, 204 or 304, whatever their
    Content-Length says (it describes another answer)."""
    return request.method != "HEAD" and upstream.status >= 200 and upstream.status not in NO_BODY


def _arrived_whole(request: web.Request, upstream: Upstream) -> bool:
    """Whether the whole body is in memory already."""
    return _has_body(request, upstream) and upstream.content.is_eof()


async def relay(
    request: web.Request,
    upstream: Upstream,
    headers: CIMultiDict[str],
    read_timeout: float | None = None,
) -> web.StreamResponse:
    """Stream `upstream` back to the client with `headers`, then release it.

    A body that has already arrived whole (most pages, scripts, API answers) goes back in one
    write with the headers, as a web.Response; a large one between plain TCP sockets is moved by
    the kernel (gateway.proxy.splice); anything else is streamed as it comes. `read_timeout`:
    the longest wait for more of the body."""
    if _arrived_whole(request, upstream):
        body = upstream.content.read_nowait()
        upstream.release()
        return WholeResponse(
            body=body, status=upstream.status, reason=upstream.reason, headers=headers
        )
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
    response.headers.extend(headers)
    try:
        await response.prepare(request)
        if _has_body(request, upstream) and not await splice.relay_body(
            request, response, upstream, read_timeout
        ):
            async for chunk in upstream.content.iter_any():  # as received: no re-slicing
                await response.write(chunk)
        await response.write_eof()
    except (TimeoutError, aiohttp.ClientError) as exc:
        # Headers are already out: the only honest signal left is a cut connection.
        log.warning("upstream failed mid-response for %s: %r", request.path, exc)
        upstream.close()
        if request.transport is not None:
            request.transport.close()
    finally:
        upstream.release()
    return response
