"""The HTTP/1.1 edge: every client connection's protocol, with the limits set under `listen:`.

aiohttp's compiled parser (llhttp) already refuses broken framing: Content-Length with
Transfer-Encoding, a duplicate or invalid Content-Length, an unknown transfer coding alone, bare
LF or CR, obs-fold, a duplicate Host, lines longer than `max_header_size`, more than
`max_headers` headers. This protocol adds what a proxy in front of other servers needs, for the
cost of a few lookups per request head and, only while a head or a body is on its way, one loop
timer per connection:

- a request head must arrive whole within `header_timeout`, counted from the connection's
  start, or on a kept-alive connection from the first byte of the next request (the wait for
  that byte is the keep-alive timeout's business);
- a request body must not stall for longer than `body_timeout` between two pieces (time the
  gateway itself stops reading, waiting for the application to take what it has, not counted);
- a body above `max_body_size` is refused with 413: by its Content-Length before anything is
  forwarded, or cut the moment a chunked body grows past it;
- a head the application could read differently from the gateway is refused with 400: a
  transfer coding other than "chunked" alone, Transfer-Encoding in HTTP/1.0, a Host that is not
  a host name or address, an Upgrade to anything but WebSocket (h2c), a WebSocket upgrade with a
  body; CONNECT gets 405 (the gateway is no tunnel).

Refusals go out as aiohttp's own parse errors do: a short plain-text answer, then the connection
is closed, so nothing after the refused head is ever read as a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any

from aiohttp import hdrs, http, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from gateway.errors import GatewayError
from gateway.hosts import canonical_host
from gateway.settings import Listen

log = logging.getLogger("gateway.protocol")

# A host name (letters, digits, "-", ".", "_") or an IP literal, then maybe a port: stricter
# than RFC 3986's reg-name, which would let "a,b" or "a;b" through to the application.
_TIMEOUT_TEXT = b"408 Request Timeout\n\nThe request did not arrive in time.\n"
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT)
)
_TOO_LARGE = "Too many headers received"  # aiohttp's message, for either parser
_EXPLAINED = {
    400: "The request is malformed.",
    405: "This method is not allowed here.",
    413: "The request body is larger than this site accepts.",
    431: "The request's header lines are too long or too many.",
}

# What the connection is waiting for, and so which deadline its timer holds.
_IDLE = 0  # nothing (a handler is busy, or kept alive between requests)
_FIRST = 1  # the first request head of a new connection, no byte of it yet
_HEAD = 2  # the rest of a request head
_BODY = 3  # more of a request body


class BodyRefused(GatewayError):
    """The edge stopped reading a request body; the handler reading it gets this instead."""


class BodyTooLarge(BodyRefused):
    status = 413
    title = "What you sent is too large"

    def __init__(self) -> None:
        super().__init__(
            "What you sent is larger than this site accepts, so it was not passed on.",
            "Send something smaller. If you need to send this, tell the people who run this site.",
        )


class BodyTimeout(BodyRefused):
    status = 408
    title = "What you sent stopped arriving"

    def __init__(self) -> None:
        super().__init__(
            "Your request stopped arriving part of the way through, so it was not passed on.",
            "Check your connection and try again.",
        )


class _Refusal(HttpProcessingError):
    """A head the gateway will not pass on (see refusal())."""


def refused_body(request: web.BaseRequest) -> BodyRefused | None:
    """Why the edge cut this request's body (too large, or stalled), if it did. A handler that
    was streaming the body upstream sees only a failed upstream request; this says what
    happened, so the client can be told 413 or 408 rather than 502."""
    error = request.content.exception()
    return error if isinstance(error, BodyRefused) else None


def refusal(message: http.RawRequestMessage, max_body: int | None) -> tuple[int, str] | None:
    """(status, reason) when a parsed head must not be passed on; None for almost every one."""
    if message.method == hdrs.METH_CONNECT:
        return 405, "This site does not open tunnels to other addresses."
    headers = message.headers
    host = headers.get(hdrs.HOST)
    if host is not None and canonical_host(host) is None:  # the reading routing uses
        return 400, "The Host header is not a host name or address."
    coding = headers.get(hdrs.TRANSFER_ENCODING)
    if coding is not None:
        if message.version < http.HttpVersion11:
            return 400, "An HTTP/1.0 request cannot use Transfer-Encoding."
        if coding.lower() != "chunked":
            return 400, "The only transfer coding accepted is chunked."
    upgrade = headers.get(hdrs.UPGRADE)
    if upgrade is not None:
        if upgrade.lower() != "websocket":
            return 400, "This site switches to no protocol other than WebSocket."
        if coding is not None or headers.get(hdrs.CONTENT_LENGTH, "0") != "0":
            return 400, "A WebSocket upgrade request cannot have a body."
    if max_body is not None:
        length = headers.get(hdrs.CONTENT_LENGTH)
        if length is not None and int(length) > max_body:
            return 413, "The request body is larger than this site accepts."
    return None


# what aiohttp's low-level server calls with each request
ServerHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class EdgeProtocol(RequestHandler):
    """aiohttp's request handler with the gateway's head and body limits."""

    __slots__ = ("_body", "_deadline", "_limits", "_phase", "_timer")

    def __init__(self, manager: web.Server, *, limits: Listen, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._phase = _IDLE
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._phase = _FIRST
        self._arm(self._loop.time() + self._limits.header_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._body = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        count = self._request_count
        RequestHandler.data_received(self, data)  # super() costs more, on every read
        if self._phase == _BODY:
            self._body_progress()
        if self._request_count != count:
            self._heads_arrived(self._request_count - count)
        elif self._phase == _IDLE:
            if data and self._waiter is not None:  # the next request on a kept-alive connection
                self._phase = _HEAD
                self._arm(self._loop.time() + self._limits.header_timeout)
        elif self._phase == _FIRST and data:
            self._phase = _HEAD

    def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> Coroutine[Any, Any, tuple[web.StreamResponse, bool]]:
        # After an upgrade the handler declined, aiohttp parses what the client sent behind it
        # here rather than in data_received: those heads need the same checks.
        if self._upgraded and self._payload_parser is None:
            return self._finish_declined_upgrade(request, resp, start_time)
        return RequestHandler.finish_response(self, request, resp, start_time)

    async def _finish_declined_upgrade(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        count = self._request_count
        finished = await RequestHandler.finish_response(self, request, resp, start_time)
        if self._request_count != count:
            self._heads_arrived(self._request_count - count)
        return finished

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        # aiohttp reads what is left of a body after the handler has answered; a body cut then
        # (too large, stalled) surfaces here as an "unhandled" error. It is neither: the
        # connection closes, as it should.
        if isinstance(kwargs.get("exc_info"), BodyRefused):
            log.debug("a request body was cut after the answer; connection closed")
            return
        super().log_exception(*args, **kwargs)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request the parser or refusal() turned down: one log line (it is the client's
        mistake, not the gateway's), a short answer, and the connection closed."""
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong) or exc.message == _TOO_LARGE:
            status = 431
        reason = (message or "").splitlines()[0] if message else ""
        log.info("refused a request from %s with %d: %s", request.remote, status, reason)
        if request.writer.output_size > 0:
            raise ConnectionError("an answer is already on its way; the connection is closed")
        explained = reason if isinstance(exc, _Refusal) else _EXPLAINED.get(status, "")
        text = f"{status} {HTTPStatus(status).phrase}\n\n{explained}".rstrip() + "\n"
        response = web.Response(status=status, text=text, content_type="text/plain")
        response.force_close()
        return response

    def _heads_arrived(self, new: int) -> None:
        """Check each head the parser has just queued; the newest decides what comes next."""
        messages = self._messages
        max_body = self._limits.max_body_size
        payload: StreamReader | None = None
        for index in range(max(len(messages) - new, 0), len(messages)):
            message, payload = messages[index]
            if isinstance(message, _ErrInfo):
                payload = None
                continue
            refused = refusal(message, max_body)
            if refused is not None:
                status, reason = refused
                error = _ErrInfo(status=status, exc=_Refusal(message=reason), message=reason)
                messages[index] = (error, EMPTY_PAYLOAD)
                payload = None
            elif max_body is not None and payload.total_bytes > max_body:
                self._cut(payload, BodyTooLarge())  # a chunked body that came with its head
                payload = None
        if payload is not None and not payload.is_eof():
            self._phase = _BODY
            self._body = payload
            self._arm(self._loop.time() + self._limits.body_timeout)
        elif self._phase != _IDLE:
            self._idle()

    def _body_progress(self) -> None:
        body = self._body
        assert body is not None
        max_body = self._limits.max_body_size
        if max_body is not None and body.total_bytes > max_body:
            self._cut(body, BodyTooLarge())
        elif body.is_eof():
            self._idle()
        else:
            self._deadline = self._loop.time() + self._limits.body_timeout

    def _cut(self, body: StreamReader, error: BodyRefused) -> None:
        """Whoever reads `body` gets `error`; the rest of the connection is not read, and it
        closes once the handler has answered."""
        body.set_exception(error)
        if not body.is_eof():
            body.feed_eof()  # nothing left to linger over after the answer
        self.close()
        self._idle()

    def _idle(self) -> None:
        self._phase = _IDLE
        self._body = None
        self._disarm()

    def _arm(self, deadline: float) -> None:
        """Fire at `deadline`; a timer already set for later is moved, one set for sooner
        re-arms itself when it fires (so a body's progress costs no new timer)."""
        self._deadline = deadline
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_deadline)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_deadline(self) -> None:
        self._timer = None
        if self.transport is None or self._phase == _IDLE:
            return
        now = self._loop.time()
        if now < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_deadline)
        elif self._phase == _BODY:
            self._body_overdue(now)
        else:
            self._head_overdue()

    def _body_overdue(self, now: float) -> None:
        body = self._body
        if body is None or body.is_eof():
            self._idle()
        elif self._reading_paused or self._buffer_paused:
            # The gateway stopped reading (the application is slow to take the body): the
            # client is not the one stalling.
            self._arm(now + self._limits.body_timeout)
        else:
            log.info(
                "a request body from %s stalled for %.3g s: cut",
                self._peer(),
                self._limits.body_timeout,
            )
            self._cut(body, BodyTimeout())

    def _head_overdue(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # a head did arrive; a handler has it
            self._idle()
            return
        if self._phase == _HEAD:
            log.info(
                "a request head from %s did not arrive within %.3g s: connection closed",
                self._peer(),
                self._limits.header_timeout,
            )
            if self.transport is not None:
                self.transport.write(_TIMEOUT_ANSWER)
        self._idle()
        self.force_close()

    def _peer(self) -> str:
        peer = self.peername
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class EdgeServer(web.Server):
    """aiohttp's low-level server, making EdgeProtocol connections."""

    def __init__(self, handler: Any, limits: Listen, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limits = limits

    def __call__(self) -> RequestHandler:
        return EdgeProtocol(self, loop=self._loop, limits=self._limits, **self._kwargs)


class EdgeRunner(web.AppRunner):
    """An AppRunner whose connections are EdgeProtocol ones. `dispatch`, given the started
    application and its own request handler, returns the handler to serve with instead
    (gateway.dispatch)."""

    __slots__ = ("_dispatch", "_limits")

    def __init__(
        self,
        app: web.Application,
        limits: Listen,
        dispatch: Callable[[web.Application, ServerHandler], ServerHandler] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits
        self._dispatch = dispatch

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the application's startup runs here
        handler: ServerHandler = plain.request_handler
        if self._dispatch is not None:
            handler = self._dispatch(self.app, handler)
        return EdgeServer(
            handler,
            self._limits,
            request_factory=plain.request_factory,
            loop=asyncio.get_running_loop(),
            **self._kwargs,
        )
