"""The forwarding hot path's own upstream client, for GET and HEAD requests without a body.

aiohttp's ClientSession does a great deal per request that a proxy never needs (a cookie jar,
redirect handling, auto headers, URL building, trace hooks, a timer context per request); on a
verified request it cost more CPU than all of the gateway's own checks. This client keeps only
what forwarding needs and reuses aiohttp's protocol and compiled response parser for the rest,
so framing (chunked, Content-Length, close-delimited, HEAD, 1xx, 204/304) is read by the same
llhttp code as before:

- one keep-alive pool per origin (scheme, host, port), last used first, idle connections closed
  after IDLE_TIMEOUT (and at once when the application closes them);
- a connection goes back to the pool only when its answer was read to its end and no further
  answer or error was parsed after it (the bytes of an unfinished one are dropped with the
  parser, which is new for every request); anything else (a client that went away mid-body, an
  answer llhttp refused, an upstream that asked to close) closes it;
- a pooled connection the application closed just as the request went out (nothing of an answer
  received) is retried once on a new connection, as aiohttp does: GET and HEAD are idempotent;
- the read timeout is aiohttp's sock_read, restarted whenever bytes arrive; but where aiohttp
  makes and cancels a loop timer at each start and each arrival (several per request), here an
  arrival only notes the time and one sweep of the pool times out any read silent longer than
  its timeout, a quarter of the timeout late at most (and never more than a second).

Requests with a body, WebSockets and everything else still go through aiohttp's ClientSession.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_writer import _serialize_headers
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

log = logging.getLogger("gateway.proxy")

IDLE_TIMEOUT = 15.0  # seconds an unused pooled connection is kept (aiohttp's default too)
MAX_IDLE = 256  # pooled connections kept per origin; more are closed when released
METHODS = frozenset({"GET", "HEAD"})
_FRAMING = ("Content-Length", "Transfer-Encoding")  # no body goes out, so none is described
_Key = tuple[str, str, int]


class UpstreamProtocolError(aiohttp.ClientError):
    """The application's answer cannot be forwarded: not HTTP, framed ambiguously, or a 101
    nobody asked for."""


class Answer:
    """An upstream's answer: status, headers and a body to stream (`content`); the caller must
    `release()` it (back to the pool when read to its end) or `close()` it."""

    __slots__ = ("_key", "_pool", "_protocol", "content", "headers", "reason", "status")

    def __init__(
        self,
        pool: Pool,
        key: _Key,
        protocol: ResponseHandler,
        status: int,
        reason: str,
        headers: CIMultiDictProxy[str],
        content: StreamReader,
    ) -> None:
        self._pool, self._key = pool, key
        self._protocol: ResponseHandler | None = protocol
        self.status: int = status
        self.reason: str | None = reason
        self.headers, self.content = headers, content

    @property
    def protocol(self) -> ResponseHandler | None:
        """The connection, until the answer is released or closed."""
        return self._protocol

    def release(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is None:
            return
        if self.content.is_eof() and not protocol.should_close and protocol.is_connected():
            self._pool.put(self._key, protocol)
        else:
            protocol.close()

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()


class _Handler(ResponseHandler):
    """aiohttp's protocol whose read timeout the pool's sweep keeps (see the module's text):
    aiohttp restarts its timer through _reschedule_timeout and stops it through _drop_timeout,
    and nothing else touches it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Pool) -> None:
        super().__init__(loop)
        self._pool = pool
        self._heard = 0.0  # when the read began or bytes last arrived (loop time)
        self._timing = False

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._timing = False
            return
        self._heard = self._loop.time()
        if not self._timing:
            self._timing = True
            self._pool.watch(self, timeout)

    def _drop_timeout(self) -> None:
        self._timing = False

    def sweep(self, now: float) -> float | None:
        """Time the read out if it has heard nothing for longer than its timeout; how often it
        wants sweeping from now on, or None once no read of it is waiting."""
        timeout = self._read_timeout
        if not self._timing or not timeout:
            return None
        if now - self._heard < timeout:
            return _sweep_every(timeout)
        self._timing = False
        self._on_read_timeout()
        return None


def _sweep_every(timeout: float) -> float:
    """How often reads with `timeout` are swept: a timeout fires at most a quarter late."""
    return min(1.0, max(0.01, timeout / 4))


class Pool:
    def __init__(self, idle_timeout: float = IDLE_TIMEOUT, max_idle: int = MAX_IDLE) -> None:
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self._idle: dict[_Key, list[tuple[ResponseHandler, float]]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._tls: ssl.SSLContext | None = None
        self._closed = False
        self._reads: set[_Handler] = set()  # reads with a timeout running (or lately ended)
        self._read_sweep: asyncio.TimerHandle | None = None
        self._read_every = 1.0

    # -- read timeouts -------------------------------------------------------------------
    def watch(self, handler: _Handler, timeout: float) -> None:
        """Time out `handler`'s read in a sweep that runs while any read is watched."""
        self._reads.add(handler)
        every = _sweep_every(timeout)
        if self._read_sweep is None or every < self._read_every:
            if self._read_sweep is not None:
                self._read_sweep.cancel()
            self._read_every = every
            self._read_sweep = asyncio.get_running_loop().call_later(every, self._sweep_reads)

    def _sweep_reads(self) -> None:
        """Time out the overdue reads; sweep again while any is waited on (after the pool is
        closed too: a read in flight then keeps its timeout)."""
        self._read_sweep = None
        loop = asyncio.get_running_loop()
        now, every = loop.time(), 1.0
        for handler in list(self._reads):
            try:
                wanted = handler.sweep(now)
            except Exception:  # one read's failure never stops the others' timeouts
                log.exception("upstream read timeout: the read could not be ended")
                wanted = None
            if wanted is None:
                self._reads.discard(handler)
            else:
                every = min(every, wanted)
        if self._reads:
            self._read_every = every
            self._read_sweep = loop.call_later(every, self._sweep_reads)

    # -- the pool -----------------------------------------------------------------------
    def put(self, key: _Key, protocol: ResponseHandler) -> None:
        idle = self._idle.setdefault(key, [])
        if self._closed or len(idle) >= self.max_idle:
            protocol.close()
            return
        # the connection's own loop: asyncio.get_running_loop() makes a getpid() system call
        # (CPython checks for a fork), on every request, at the cost of a few microseconds
        loop = protocol._loop
        idle.append((protocol, loop.time()))
        if self._sweep is None:
            self._sweep = loop.call_later(self.idle_timeout, self._expire)

    def _take(self, key: _Key) -> ResponseHandler | None:
        idle = self._idle.get(key)
        while idle:
            protocol, _since = idle.pop()
            if protocol.is_connected() and not protocol.should_close:
                return protocol
            protocol.close()
        return None

    def _expire(self) -> None:
        self._sweep = None
        loop = asyncio.get_running_loop()
        oldest = loop.time() - self.idle_timeout
        for key, idle in list(self._idle.items()):
            keep = []
            for protocol, since in idle:
                if since > oldest and protocol.is_connected():
                    keep.append((protocol, since))
                else:
                    protocol.close()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        if self._idle:
            self._sweep = loop.call_later(self.idle_timeout, self._expire)

    def idle_count(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    async def close(self) -> None:
        self._closed = True
        if self._sweep is not None:  # reads in flight keep their sweep: it ends with them
            self._sweep.cancel()
            self._sweep = None
        for idle in self._idle.values():
            for protocol, _since in idle:
                protocol.close()
        self._idle.clear()

    # -- a request ----------------------------------------------------------------------
    async def send(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        connect_timeout: float | None,
        read_timeout: float | None,
    ) -> Answer:
        """Send a bodiless GET or HEAD to `url` and return its answer once the headers are in.
        Raises TimeoutError (connect or read), or aiohttp.ClientError / OSError."""
        if method not in METHODS:
            raise ValueError(f"{method} requests go through aiohttp's client")
        host, port = url.raw_host or "", url.port or 0
        key: _Key = (url.scheme, host, port)
        head = _head(method, url, headers)
        protocol = self._take(key)
        reused = protocol is not None
        while True:
            if protocol is None:
                protocol = await self._connect(key, connect_timeout)
            try:
                return await self._exchange(key, protocol, method, head, read_timeout)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                protocol.close()
                if not reused:
                    raise
                # The application closed an idle connection as this request went out.
                protocol, reused = None, False
            except BaseException:
                protocol.close()
                raise

    async def _exchange(
        self,
        key: _Key,
        protocol: ResponseHandler,
        method: str,
        head: bytes,
        read_timeout: float | None,
    ) -> Answer:
        protocol.set_response_params(
            skip_payload=method == "HEAD",
            read_until_eof=True,  # neither a length nor chunks: the body ends with the connection
            auto_decompress=False,
            read_timeout=read_timeout,
        )
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise aiohttp.ServerDisconnectedError()
        transport.write(head)
        while True:
            # (again after each 1xx: aiohttp's protocol stops the timer at any bodiless answer)
            protocol.start_timeout()
            try:
                message, payload = await protocol.read()
            except HttpProcessingError as exc:  # llhttp refused the answer's framing or syntax
                raise UpstreamProtocolError(f"the application's answer is not HTTP: {exc}") from exc
            if message.code == 101:
                raise UpstreamProtocolError("the application switched protocols unasked (101)")
            if not 100 <= message.code <= 199:  # 1xx (103 Early Hints, say) are not forwarded
                break
        return Answer(self, key, protocol, message.code, message.reason, message.headers, payload)

    async def _connect(self, key: _Key, timeout: float | None) -> ResponseHandler:
        scheme, host, port = key
        tls = self._context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        factory: Callable[[], ResponseHandler] = lambda: _Handler(loop, self)  # noqa: E731
        async with asyncio.timeout(timeout):
            _transport, protocol = await loop.create_connection(
                factory, host, port, ssl=tls, server_hostname=host.rstrip(".") if tls else None
            )
        return protocol

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:  # verified against the system's CAs, as aiohttp's default
            self._tls = ssl.create_default_context()
            self._tls.set_alpn_protocols(["http/1.1"])
        return self._tls


def _head(method: str, url: URL, headers: CIMultiDict[str]) -> bytes:
    """The request line and headers; refuses control characters (header injection)."""
    if "Host" not in headers:
        headers["Host"] = url.host_port_subcomponent or ""
    for name in _FRAMING:
        headers.popall(name, None)
    return _serialize_headers(f"{method} {url.raw_path_qs} HTTP/1.1", headers)
