"""The lean upstream client for bodiless GET and HEAD (gateway/proxy/client.py), against raw
local servers scripted byte for byte: what goes out, how each framing is read, when a connection
is kept or closed, what a misbehaving upstream cannot do to the next request, and its failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import pytest
from multidict import CIMultiDict
from yarl import URL

from gateway.keys import RUNTIME
from gateway.proxy.client import Answer, Pool, UpstreamProtocolError, _head
from tests.proxy.helpers import BYPASS_POLICIES, bypass_app
from tests.support import free_port

T = TypeVar("T")

READ = 2.0  # the read timeout of requests that are not meant to time out
GUARD = 5.0  # the longest one step of a test may take before the test calls it hung
# What the client raises for an answer it cannot parse: a ClientError, so the gateway says 502.
UNPARSABLE = aiohttp.ClientError

# -- the scripted server ---------------------------------------------------------------------
CLOSE = "close"  # a step: the server closes the connection (a FIN)
RESET = "reset"  # a step: the server drops the connection with a RST
HOLD = "hold"  # a step: the server writes nothing more, and waits for the client to close


@dataclass
class Received:
    """One request as the server read it off the wire."""

    connection: int  # which connection it came on, counting from 1
    head: bytes  # the request line and headers, up to and including the blank line
    body: bytes = b""

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    @property
    def method(self) -> str:
        return self.line.split(" ")[0]

    @property
    def target(self) -> str:
        return self.line.split(" ")[1]

    @property
    def headers(self) -> list[tuple[str, str]]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        return [(n, v.strip()) for n, _, v in (line.partition(":") for line in lines if line)]

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


Step = bytes | float | str
Script = Callable[[Received], Sequence[Step]]
Start = Callable[..., Awaitable["Scripted"]]  # the `scripted` fixture


class Scripted:
    """A raw HTTP/1.1 server. It reads each request (its head, and a body when one is declared),
    records it in `received`, then plays `script(request)`: bytes are written as they are, one
    write each; a float is a pause; CLOSE, RESET and HOLD end the connection (see above)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.received: list[Received] = []
        self.connections = 0
        self.url = ""
        self._ended: dict[int, asyncio.Event] = {}
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str) -> None:
        self._server = await asyncio.start_server(self._handle, host, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = str(URL.build(scheme="http", host=host, port=port))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=GUARD)
        if self._server is not None:
            await self._server.wait_closed()

    def seen(self) -> list[tuple[int, str]]:
        """(connection, target) of every request received, in order."""
        return [(r.connection, r.target) for r in self.received]

    async def ended(self, connection: int) -> None:
        """Wait until `connection` is over (the client closed it, unless the script did)."""
        try:
            async with asyncio.timeout(GUARD):
                await self._ended[connection].wait()
        except TimeoutError:
            raise AssertionError(f"connection {connection} is still open") from None

    def is_open(self, connection: int) -> bool:
        return not self._ended[connection].is_set()

    def open_connections(self) -> int:
        return sum(not ended.is_set() for ended in self._ended.values())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        ended = self._ended[number] = asyncio.Event()
        self._writers.append(writer)
        try:
            while (request := await _read_request(reader, number)) is not None:
                self.received.append(request)
                for step in self.script(request):
                    if isinstance(step, bytes):
                        writer.write(step)
                        await writer.drain()
                    elif isinstance(step, float):
                        await asyncio.sleep(step)
                    elif step == HOLD:
                        await reader.read()  # until the client closes
                        return
                    elif step == RESET:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        writer.transport.abort()
                        return
                    else:
                        assert step == CLOSE, step
                        return
        except (ConnectionError, RuntimeError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            ended.set()
            self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection
    request = Received(connection, head)
    if length := request.values("Content-Length"):
        request.body = await reader.readexactly(int(length[0]))
    elif "chunked" in ",".join(request.values("Transfer-Encoding")).lower():
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            request.body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
    return request


def reply(body: bytes = b"", *headers: str, status: str = "200 OK") -> bytes:
    """An HTTP/1.1 answer with a Content-Length (and `body`, which may be left out for HEAD)."""
    lines = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def head_of(answer: bytes) -> bytes:
    """The status line and headers of `answer`, as a server answers HEAD."""
    return answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"


def echo(request: Received) -> list[Step]:
    """Answers every request with its own target as the body: each answer is told apart."""
    answer = reply(request.target.encode())
    return [head_of(answer) if request.method == "HEAD" else answer]


def echo_of(target: str) -> list[Step]:
    """What echo() answers a GET for `target`."""
    return [reply(target.encode())]


def per_request(*plans: Sequence[Step]) -> Script:
    """The n-th request the server receives (over all connections) gets plans[n]; every later
    one gets echo()."""
    count = 0

    def script(request: Received) -> Sequence[Step]:
        nonlocal count
        count += 1
        return plans[count - 1] if count <= len(plans) else echo(request)

    return script


# -- the client side -------------------------------------------------------------------------


async def guard(awaitable: Awaitable[T], limit: float = GUARD) -> T:
    """`awaitable`, or AssertionError if it takes longer than `limit` (a hang is not a
    TimeoutError from the client)."""
    timer = asyncio.timeout(limit)
    try:
        async with timer:
            return await awaitable
    except TimeoutError:
        if timer.expired():
            raise AssertionError(f"still waiting after {limit} s") from None
        raise


def send(
    pool: Pool,
    url: str,
    method: str = "GET",
    headers: CIMultiDict[str] | dict[str, str] | None = None,
    read: float | None = READ,
    connect: float | None = READ,
) -> Coroutine[Any, Any, Answer]:
    request = CIMultiDict(headers or {})
    return pool.send(method, URL(url, encoded=True), request, connect, read)


async def fetch(
    pool: Pool,
    url: str,
    method: str = "GET",
    headers: CIMultiDict[str] | dict[str, str] | None = None,
) -> tuple[Answer, bytes]:
    """One request answered and read to its end, then released."""
    answer = await guard(send(pool, url, method, headers))
    try:
        body = await guard(answer.content.read())
    finally:
        answer.release()
    return answer, body


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Awaitable[Scripted]]]:
    """scripted(script, host="127.0.0.1"): a started Scripted server, stopped after the test."""
    servers: list[Scripted] = []

    async def start(script: Script, host: str = "127.0.0.1") -> Scripted:
        server = Scripted(script)
        await server.start(host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def pools() -> AsyncIterator[Callable[..., Pool]]:
    """pools(**options): a Pool, closed after the test."""
    made: list[Pool] = []

    def make(**options: Any) -> Pool:
        made.append(Pool(**options))
        return made[-1]

    yield make
    for pool in made:
        await pool.close()


@pytest.fixture
def pool(pools: Callable[..., Pool]) -> Pool:
    return pools()


# -- 1. what goes out ------------------------------------------------------------------------


async def test_request_line_and_host_from_the_url(scripted: Start, pool: Pool) -> None:
    """`GET <raw path and query> HTTP/1.1`, the caller's headers as given (duplicates in
    order), and one Host naming the URL's host and non-default port."""
    server = await scripted(echo)
    headers = CIMultiDict([("X-Multi", "one"), ("Accept", "*/*"), ("X-Multi", "two")])
    answer, body = await fetch(pool, server.url + "/a%20b/c?q=1&r=%2F", headers=headers)
    assert answer.status == 200 and body == b"/a%20b/c?q=1&r=%2F"
    (request,) = server.received
    assert request.line == "GET /a%20b/c?q=1&r=%2F HTTP/1.1"
    port = URL(server.url).port
    assert request.values("Host") == [f"127.0.0.1:{port}"]
    assert request.values("X-Multi") == ["one", "two"]
    assert request.values("Accept") == ["*/*"]


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_host_of_an_ipv6_literal_is_bracketed(scripted: Start, pool: Pool) -> None:
    server = await scripted(echo, host="::1")
    _answer, body = await fetch(pool, server.url + "/six")
    assert body == b"/six"
    port = URL(server.url).port
    assert server.received[0].values("Host") == [f"[::1]:{port}"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.com/x", "example.com"),
        ("http://example.com:80/x", "example.com"),
        ("https://example.com:443/x", "example.com"),
        ("https://example.com:8443/x", "example.com:8443"),
    ],
)
def test_host_leaves_out_the_default_port(url: str, host: str) -> None:
    """Ports 80 and 443 cannot be listened on here: the request head itself is checked."""
    head = _head("GET", URL(url), CIMultiDict())
    assert head == f"GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


async def test_callers_host_is_kept(scripted: Start, pool: Pool) -> None:
    server = await scripted(echo)
    await fetch(pool, server.url + "/", headers={"host": "app.internal:8080"})
    assert server.received[0].values("Host") == ["app.internal:8080"]


async def test_framing_headers_are_not_sent(scripted: Start, pool: Pool) -> None:
    """No body goes out, so no Content-Length or Transfer-Encoding describes one (a server
    believing them would wait for a body, or read the next request as one)."""
    server = await scripted(echo)
    headers = CIMultiDict(
        [
            ("Content-Length", "10"),
            ("transfer-encoding", "chunked"),
            ("Transfer-Encoding", "gzip"),
            ("X-Kept", "yes"),
        ]
    )
    await fetch(pool, server.url + "/one", headers=headers)
    await fetch(pool, server.url + "/two")
    first = server.received[0]
    assert first.values("Content-Length") == [] and first.values("Transfer-Encoding") == []
    assert first.values("X-Kept") == ["yes"]
    assert server.seen() == [(1, "/one"), (1, "/two")]


@pytest.mark.parametrize(
    ("name", "value", "path"),
    [
        ("X-Evil", "a\r\nX-Injected: 1", "/"),
        ("X-Evil", "a\nb", "/"),
        ("X-Evil", "a\rb", "/"),
        ("X-Evil", "a\x00b", "/"),
        ("X-Evil\r\nX-Injected", "1", "/"),
        ("X-Fine", "ok", "/a\x00b"),
    ],
    ids=["crlf", "lf", "cr", "nul", "in-name", "nul-in-path"],
)
async def test_control_characters_are_refused_before_anything_is_sent(
    scripted: Start, pool: Pool, name: str, value: str, path: str
) -> None:
    """A ValueError, and nothing written: the pooled connection is untouched and serves the
    next request as if the refused one had never been tried."""
    server = await scripted(echo)
    await fetch(pool, server.url + "/before")
    with pytest.raises(ValueError, match="control character"):
        await guard(send(pool, server.url + path, headers={name: value}))
    assert pool.idle_count() == 1
    await fetch(pool, server.url + "/after")
    assert server.seen() == [(1, "/before"), (1, "/after")]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "get"])
async def test_other_methods_are_refused(scripted: Start, pool: Pool, method: str) -> None:
    server = await scripted(echo)
    with pytest.raises(ValueError, match="aiohttp"):
        await guard(send(pool, server.url + "/", method))
    assert server.connections == 0


# -- 2-6. framing and keep-alive -------------------------------------------------------------


async def test_content_length_answers_share_one_connection(scripted: Start, pool: Pool) -> None:
    server = await scripted(echo)
    answer, body = await fetch(pool, server.url + "/one")
    assert (answer.status, answer.reason, body) == (200, "OK", b"/one")
    assert answer.headers["Content-Length"] == "4"
    assert answer.protocol is None  # released
    assert pool.idle_count() == 1
    _answer, body = await fetch(pool, server.url + "/two")
    assert body == b"/two"
    assert pool.idle_count() == 1
    assert server.seen() == [(1, "/one"), (1, "/two")]
    assert server.is_open(1)


async def test_chunked_answer_read_to_its_end_is_reused(scripted: Start, pool: Pool) -> None:
    server = await scripted(
        per_request(
            [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                0.02,
                b"7;ext=1\r\n, world\r\n",
                0.02,
                b"0\r\nX-Trailer: t\r\n\r\n",
            ]
        )
    )
    answer, body = await fetch(pool, server.url + "/chunked")
    assert body == b"hello, world"
    assert answer.headers["Transfer-Encoding"] == "chunked"
    assert pool.idle_count() == 1
    _answer, body = await fetch(pool, server.url + "/next")
    assert body == b"/next"
    assert server.seen() == [(1, "/chunked"), (1, "/next")]


async def test_close_delimited_body_is_read_whole_and_not_pooled(
    scripted: Start, pool: Pool
) -> None:
    """Neither a length nor chunks: the body is everything up to the server's close."""
    server = await scripted(
        per_request(
            [
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ",
                0.02,
                b"part two",
                CLOSE,
            ]
        )
    )
    _answer, body = await fetch(pool, server.url + "/eof")
    assert body == b"part one, part two"
    assert pool.idle_count() == 0
    _answer, body = await fetch(pool, server.url + "/next")
    assert body == b"/next"
    assert server.seen() == [(1, "/eof"), (2, "/next")]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nbye",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_answer_asking_to_close_is_not_pooled(
    scripted: Start, pool: Pool, answer: bytes
) -> None:
    """The server keeps its end open: it is the client that must close the connection."""
    server = await scripted(per_request([answer]))
    _answer, body = await fetch(pool, server.url + "/bye")
    assert body == b"bye"
    assert pool.idle_count() == 0
    await server.ended(1)
    _answer, body = await fetch(pool, server.url + "/next")
    assert body == b"/next"
    assert server.seen() == [(1, "/bye"), (2, "/next")]


@pytest.mark.parametrize(
    "framing", ["Content-Length: 1000", "Transfer-Encoding: chunked"], ids=["length", "chunked"]
)
async def test_head_answer_has_no_body_and_the_connection_goes_on(
    scripted: Start, pool: Pool, framing: str
) -> None:
    """The headers describe a body the server does not send: the client must not wait for it,
    nor read the next answer as it."""
    head = f"HTTP/1.1 200 OK\r\n{framing}\r\nContent-Type: text/html\r\n\r\n".encode()
    server = await scripted(per_request([head]))
    answer, body = await fetch(pool, server.url + "/page", "HEAD")
    assert answer.status == 200 and body == b""
    assert answer.headers["Content-Type"] == "text/html"
    assert pool.idle_count() == 1
    _answer, body = await fetch(pool, server.url + "/after")
    assert body == b"/after"
    assert [(r.connection, r.method) for r in server.received] == [(1, "HEAD"), (1, "GET")]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n',
        b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1000\r\n\r\n',
    ],
    ids=["204", "204-length-0", "304", "304-with-length"],
)
async def test_204_and_304_have_no_body_and_are_reused(
    scripted: Start, pool: Pool, answer: bytes
) -> None:
    server = await scripted(per_request([answer]))
    first, body = await fetch(pool, server.url + "/nothing")
    assert first.status in (204, 304) and body == b""
    assert pool.idle_count() == 1
    _answer, body = await fetch(pool, server.url + "/after")
    assert body == b"/after"
    assert server.seen() == [(1, "/nothing"), (1, "/after")]


# -- 7. interim answers ----------------------------------------------------------------------

EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.mark.parametrize(
    "steps",
    [
        [EARLY_HINTS, 0.02, reply(b"page", "X-Final: yes")],
        [EARLY_HINTS + reply(b"page", "X-Final: yes")],
        [CONTINUE, EARLY_HINTS, 0.02, reply(b"page", "X-Final: yes")],
    ],
    ids=["apart", "one-write", "two-interim"],
)
async def test_interim_answers_are_skipped(scripted: Start, pool: Pool, steps: list[Step]) -> None:
    server = await scripted(per_request(steps))
    answer, body = await fetch(pool, server.url + "/page")
    assert (answer.status, body) == (200, b"page")
    assert answer.headers["X-Final"] == "yes"
    assert "Link" not in answer.headers
    _answer, body = await fetch(pool, server.url + "/after")
    assert body == b"/after"
    assert server.seen() == [(1, "/page"), (1, "/after")]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
    ids=["websocket", "bare"],
)
async def test_unasked_switch_of_protocols_is_an_error_and_closes(
    scripted: Start, pool: Pool, answer: bytes
) -> None:
    server = await scripted(per_request([answer, HOLD]))
    with pytest.raises(UpstreamProtocolError) as raised:
        await guard(send(pool, server.url + "/plain"))
    assert isinstance(raised.value, aiohttp.ClientError)
    await server.ended(1)  # the client closed it: it never goes back to the pool
    assert pool.idle_count() == 0


async def test_read_timeout_still_runs_after_an_interim_answer(scripted: Start, pool: Pool) -> None:
    server = await scripted(per_request([EARLY_HINTS, HOLD]))
    with pytest.raises(TimeoutError):
        await guard(send(pool, server.url + "/hinted", read=0.2), limit=1.0)


# -- 8. connections the server closed --------------------------------------------------------


async def test_pooled_connection_the_server_closed_is_not_used(scripted: Start, pool: Pool) -> None:
    """The server answers, then closes the idle connection: the next request gets a new one
    (whether the client noticed the close before sending or retried after)."""
    server = await scripted(per_request([*echo_of("/one"), CLOSE]))
    await fetch(pool, server.url + "/one")
    await server.ended(1)
    _answer, body = await fetch(pool, server.url + "/two")
    assert body == b"/two"
    assert server.seen() == [(1, "/one"), (2, "/two")]


@pytest.mark.parametrize("how", [CLOSE, RESET])
async def test_pooled_connection_closed_as_the_request_arrives_is_retried_once(
    scripted: Start, pool: Pool, how: str
) -> None:
    """The race aiohttp retries too: the server drops a kept connection just as the request
    goes out, nothing answered. GET is idempotent: it is sent again on a new connection."""
    server = await scripted(per_request(echo_of("/one"), [how]))
    await fetch(pool, server.url + "/one")
    answer, body = await fetch(pool, server.url + "/two")
    assert (answer.status, body) == (200, b"/two")
    assert server.seen() == [(1, "/one"), (1, "/two"), (2, "/two")]
    assert pool.idle_count() == 1


async def test_new_connection_closed_without_an_answer_is_not_retried(
    scripted: Start, pool: Pool
) -> None:
    server = await scripted(per_request([CLOSE]))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await guard(send(pool, server.url + "/gone"))
    assert server.seen() == [(1, "/gone")]
    assert server.connections == 1


async def test_only_one_retry_when_the_new_connection_fails_too(
    scripted: Start, pool: Pool
) -> None:
    server = await scripted(per_request(echo_of("/one"), [CLOSE], [CLOSE]))
    await fetch(pool, server.url + "/one")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await guard(send(pool, server.url + "/two"))
    assert server.seen() == [(1, "/one"), (1, "/two"), (2, "/two")]
    assert server.connections == 2
    assert pool.idle_count() == 0


async def test_read_timeout_on_a_pooled_connection_is_not_retried(
    scripted: Start, pool: Pool
) -> None:
    """A server that got the request and is slow may be acting on it: not sent twice."""
    server = await scripted(per_request(echo_of("/one"), [HOLD]))
    await fetch(pool, server.url + "/one")
    with pytest.raises(TimeoutError):
        await guard(send(pool, server.url + "/two", read=0.2))
    await server.ended(1)
    assert server.seen() == [(1, "/one"), (1, "/two")]
    assert pool.idle_count() == 0


# -- 9. an answer let go before its end ------------------------------------------------------


async def test_released_mid_body_closes_the_connection(scripted: Start, pool: Pool) -> None:
    """The browser went away half way through a large answer: the rest is still on its way,
    so the connection cannot carry another request."""
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"x" * 65536
    server = await scripted(per_request([big, HOLD]))
    answer = await guard(send(pool, server.url + "/big"))
    assert await guard(answer.content.readany())
    answer.release()
    answer.release()  # a second release changes nothing
    assert pool.idle_count() == 0
    await server.ended(1)
    _answer, body = await fetch(pool, server.url + "/next")
    assert body == b"/next"
    assert server.seen() == [(1, "/big"), (2, "/next")]


async def test_close_never_pools(scripted: Start, pool: Pool) -> None:
    """close() is for an answer gone wrong: even one read to its end is not kept."""
    server = await scripted(echo)
    answer = await guard(send(pool, server.url + "/one"))
    assert await guard(answer.content.read()) == b"/one"
    answer.close()
    answer.release()  # after close(), nothing is left to release
    assert answer.protocol is None
    assert pool.idle_count() == 0
    await server.ended(1)


# -- 10. what a misbehaving upstream cannot do to the next request ---------------------------

HELLO = reply(b"hello")
SMUGGLED = reply(b"SMUGGLED")


@pytest.mark.parametrize(
    ("steps", "first"),
    [
        ([HELLO + SMUGGLED], b"hello"),
        ([HELLO, 0.05, SMUGGLED], b"hello"),
        ([HELLO + b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n"], b"hello"),
        ([HELLO + b"HTTP/1.1 200 OK\r\nContent-Len", 0.02, b"gth: 8\r\n\r\nSMUGGLED"], b"hello"),
        ([HELLO, 0.05, b"GARBAGE\r\n\r\n"], b"hello"),
        ([HELLO + b"GARBAGE\r\n\r\n"], None),
        ([HELLO + b" and then some"], None),
    ],
    ids=[
        "answer-in-same-write",
        "answer-in-later-write",
        "half-answer",
        "answer-in-two-halves",
        "garbage-later",
        "garbage-in-same-write",
        "longer-than-content-length",
    ],
)
async def test_bytes_after_an_answer_never_reach_the_next_request(
    scripted: Start, pool: Pool, steps: list[Step], first: bytes | None
) -> None:
    """Anything the server sends past the end of an answer (a second answer, as in response
    splitting, or garbage): the first answer reads as declared, or is refused (None), and the
    next request gets its own answer from the server, never those bytes."""
    server = await scripted(per_request(steps))
    if first is None:
        with pytest.raises(UNPARSABLE):
            await fetch(pool, server.url + "/first")
    else:
        _answer, body = await fetch(pool, server.url + "/first")
        assert body == first
    await asyncio.sleep(0.1)  # whatever else was sent has arrived
    answer, body = await fetch(pool, server.url + "/second")
    assert (answer.status, body) == (200, b"/second")
    assert answer.headers["Content-Length"] == "7"
    assert server.received[-1].target == "/second"


async def test_second_answer_in_the_same_write_closes_the_connection(
    scripted: Start, pool: Pool
) -> None:
    """The parser saw more after the answer: the connection is never pooled."""
    server = await scripted(per_request([HELLO + SMUGGLED, HOLD]))
    _answer, body = await fetch(pool, server.url + "/first")
    assert body == b"hello"
    assert pool.idle_count() == 0
    await server.ended(1)
    await fetch(pool, server.url + "/second")
    assert server.seen() == [(1, "/first"), (2, "/second")]


async def test_unasked_answer_arriving_while_idle_discards_the_connection(
    scripted: Start, pool: Pool
) -> None:
    server = await scripted(per_request([HELLO, SMUGGLED]))
    await fetch(pool, server.url + "/first")
    await asyncio.sleep(0.1)  # SMUGGLED is in the pooled connection's buffer
    _answer, body = await fetch(pool, server.url + "/second")
    assert body == b"/second"
    assert server.seen() == [(1, "/first"), (2, "/second")]
    await server.ended(1)


@pytest.mark.parametrize(
    ("answer", "method", "first"),
    [
        ([HELLO], "HEAD", None),
        ([head_of(HELLO), 0.05, b"hello"], "HEAD", b""),
        ([b"HTTP/1.1 204 No Content\r\n\r\nhello"], "GET", None),
        ([b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", 0.05, b"hello"], "GET", b""),
    ],
    ids=["head-same-write", "head-later-write", "204-same-write", "304-later-write"],
)
async def test_a_body_where_none_belongs_never_reaches_the_next_request(
    scripted: Start, pool: Pool, answer: list[Step], method: str, first: bytes | None
) -> None:
    """A server that sends a body after the head of an answer that has none (HEAD, 204, 304):
    the first answer is bodiless, or refused (None); those bytes are never the next answer."""
    server = await scripted(per_request(answer))
    if first is None:
        with pytest.raises(UNPARSABLE):
            await fetch(pool, server.url + "/first", method)
    else:
        _answer, body = await fetch(pool, server.url + "/first", method)
        assert body == first
    await asyncio.sleep(0.1)  # the stray body has arrived
    _answer, body = await fetch(pool, server.url + "/second")
    assert body == b"/second"
    assert server.seen() == [(1, "/first"), (2, "/second")]


CONFLICTING = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhellohi",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 7\r\n\r\nhellohi",
    b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
]
CONFLICTING_IDS = [
    "length-and-chunked",
    "chunked-and-length",
    "two-lengths",
    "same-length-twice",
    "length-list",
    "signed-length",
    "bad-chunk-size",
]


@pytest.mark.parametrize("answer", CONFLICTING, ids=CONFLICTING_IDS)
async def test_ambiguous_framing_is_refused_and_the_connection_closed(
    scripted: Start, pool: Pool, answer: bytes
) -> None:
    """Two readings of where the answer ends are the stuff of desync: llhttp refuses them
    (the headers, or the body), the connection is closed, and the next request gets a fresh
    answer on a new connection."""
    server = await scripted(per_request([answer, HOLD]))
    with pytest.raises(UNPARSABLE):
        await fetch(pool, server.url + "/first")
    assert pool.idle_count() == 0
    await server.ended(1)
    _answer, body = await fetch(pool, server.url + "/second")
    assert body == b"/second"
    assert server.seen() == [(1, "/first"), (2, "/second")]


@pytest.mark.parametrize(
    "answer",
    [*CONFLICTING[:3], HELLO + b"GARBAGE\r\n\r\n", b"NOT HTTP AT ALL\r\n\r\n"],
    ids=[*CONFLICTING_IDS[:3], "garbage-after", "not-http"],
)
async def test_unparsable_answer_raises_a_client_error(
    scripted: Start, pool: Pool, answer: bytes
) -> None:
    server = await scripted(per_request([answer, HOLD]))
    with pytest.raises(aiohttp.ClientError):
        await guard(send(pool, server.url + "/first"))


# -- 11. read timeouts -----------------------------------------------------------------------


async def test_no_answer_is_a_read_timeout(scripted: Start, pool: Pool) -> None:
    server = await scripted(per_request([HOLD]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await guard(send(pool, server.url + "/silent", read=0.2))
    assert loop.time() - started < 2
    await server.ended(1)
    assert pool.idle_count() == 0


async def test_stall_mid_body_is_a_read_timeout(scripted: Start, pool: Pool) -> None:
    server = await scripted(
        per_request([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", HOLD])
    )
    answer = await guard(send(pool, server.url + "/stall", read=0.2))
    assert answer.status == 200
    with pytest.raises(TimeoutError):
        await guard(answer.content.read())
    answer.release()
    assert pool.idle_count() == 0
    await server.ended(1)


async def test_read_timeout_restarts_whenever_bytes_arrive(scripted: Start, pool: Pool) -> None:
    """A slow but steady body longer in all than the read timeout is read whole."""
    pieces: list[Step] = [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"]
    for piece in b"steady":
        pieces += [0.1, bytes([piece])]
    server = await scripted(per_request(pieces))
    answer = await guard(send(pool, server.url + "/slow", read=0.5))
    assert await guard(answer.content.read()) == b"steady"
    answer.release()
    assert pool.idle_count() == 1


async def test_a_finished_read_never_times_out_its_pooled_connection(
    scripted: Start, pool: Pool
) -> None:
    """The read timeout is kept by the pool's sweep, not a timer per read: once an answer is
    read whole, its connection waits in the pool past the timeout and carries the next one."""
    server = await scripted(per_request())
    for path in ("/one", "/two"):
        answer = await guard(send(pool, server.url + path, read=0.1))
        assert await guard(answer.content.read()) == path.encode()
        answer.release()
        await asyncio.sleep(0.3)  # three timeouts: several sweeps go by
        assert pool.idle_count() == 1
    assert server.connections == 1


async def test_reads_of_different_timeouts_each_time_out_on_their_own(
    scripted: Start, pool: Pool
) -> None:
    """A long timeout watched first does not make a short one wait for its sweep."""
    server = await scripted(per_request([HOLD], [HOLD]))
    loop = asyncio.get_running_loop()
    slow = asyncio.ensure_future(send(pool, server.url + "/slow", read=30.0))
    await asyncio.sleep(0.05)
    started = loop.time()
    with pytest.raises(TimeoutError):
        await guard(send(pool, server.url + "/quick", read=0.1), limit=2.0)
    # its own sweep (every 25 ms), not the 30 s read's (once a second, 0.95 s from here)
    assert loop.time() - started < 0.6
    assert not slow.done()
    slow.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await slow


async def test_a_read_in_flight_keeps_its_timeout_when_the_pool_closes(
    scripted: Start, pool: Pool
) -> None:
    """Review finding: closing the pool stopped the sweep, so a read already waiting never
    timed out (the script's guard fired at 4 s)."""
    server = await scripted(per_request([HOLD]))
    waiting = asyncio.ensure_future(send(pool, server.url + "/silent", read=0.2))
    await asyncio.sleep(0.05)
    await pool.close()
    with pytest.raises(TimeoutError):
        await guard(waiting, limit=2.0)


async def test_one_reads_failure_does_not_stop_the_others_timeouts(
    scripted: Start, pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: an error while ending one read stopped the sweep for every read watched."""
    server = await scripted(per_request([HOLD], [HOLD]))
    first = asyncio.ensure_future(send(pool, server.url + "/one", read=0.2))
    await asyncio.sleep(0.05)
    (broken,) = list(pool._reads)

    def fail(now: float) -> float | None:
        raise RuntimeError("broken")

    monkeypatch.setattr(broken, "sweep", fail)
    with pytest.raises(TimeoutError):
        await guard(send(pool, server.url + "/two", read=0.2), limit=2.0)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await first


# -- 12. connecting --------------------------------------------------------------------------


async def test_nothing_listening_is_a_connection_error(pool: Pool) -> None:
    with pytest.raises((OSError, aiohttp.ClientError)) as raised:
        await guard(send(pool, f"http://127.0.0.1:{free_port()}/"))
    assert not isinstance(raised.value, TimeoutError)


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs at backlog")
async def test_connect_timeout(pool: Pool) -> None:
    """A listener whose accept queue is full (backlog 0, one connection never accepted): Linux
    drops further SYNs, so a connect neither succeeds nor fails until the timeout."""
    listener = socket.socket()
    fillers: list[asyncio.StreamWriter] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            try:
                async with asyncio.timeout(0.3):
                    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except TimeoutError:
                break
            fillers.append(writer)
        else:
            pytest.skip("this kernel accepted every connection: cannot make one hang")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await guard(send(pool, f"http://127.0.0.1:{port}/", connect=0.2))
        assert loop.time() - started < 2
    finally:
        for writer in fillers:
            writer.close()
        listener.close()


# -- 13-14. the pool -------------------------------------------------------------------------


async def test_idle_connections_expire(scripted: Start, pools: Callable[..., Pool]) -> None:
    pool = pools(idle_timeout=0.1)
    server = await scripted(echo)
    await fetch(pool, server.url + "/one")
    assert pool.idle_count() == 1
    await asyncio.sleep(0.35)
    assert pool.idle_count() == 0
    await server.ended(1)
    await fetch(pool, server.url + "/two")
    assert server.seen() == [(1, "/one"), (2, "/two")]


async def test_expiry_keeps_connections_used_more_recently(
    scripted: Start, pools: Callable[..., Pool]
) -> None:
    """Two idle connections released 0.25 s apart: the first sweep closes only the older."""
    pool = pools(idle_timeout=0.4)
    server = await scripted(echo)
    older, newer = await guard(
        asyncio.gather(send(pool, server.url + "/older"), send(pool, server.url + "/newer"))
    )
    connection = {r.target: r.connection for r in server.received}
    for answer in (older, newer):
        await guard(answer.content.read())
    older.release()
    await asyncio.sleep(0.25)
    newer.release()
    await asyncio.sleep(0.2)  # the first sweep ran, 0.4 s after the first release
    assert pool.idle_count() == 1
    await server.ended(connection["/older"])
    assert server.is_open(connection["/newer"])
    await asyncio.sleep(0.5)
    assert pool.idle_count() == 0
    await server.ended(connection["/newer"])


async def test_expire_keeps_what_is_fresh(scripted: Start, pools: Callable[..., Pool]) -> None:
    """_expire() itself, called by hand well within idle_timeout: nothing is closed."""
    pool = pools(idle_timeout=60)
    server = await scripted(echo)
    await fetch(pool, server.url + "/one")
    pool._expire()
    assert pool.idle_count() == 1
    await fetch(pool, server.url + "/two")
    assert server.seen() == [(1, "/one"), (1, "/two")]
    assert server.is_open(1)


async def test_expire_drops_connections_the_server_closed(
    scripted: Start, pools: Callable[..., Pool]
) -> None:
    """A pooled connection the server closed is dropped at the next sweep, however fresh."""
    pool = pools(idle_timeout=60)
    server = await scripted(per_request([*echo_of("/one"), CLOSE]))
    await fetch(pool, server.url + "/one")
    await server.ended(1)
    await guard(until(lambda: not any(p.is_connected() for p in idle_protocols(pool))))
    assert pool.idle_count() == 1  # still listed until a sweep or a request finds it
    pool._expire()
    assert pool.idle_count() == 0


def idle_protocols(pool: Pool) -> list[Any]:
    return [protocol for idle in pool._idle.values() for protocol, _since in idle]


async def test_the_connection_used_last_is_taken_first(scripted: Start, pool: Pool) -> None:
    """Last used first: the others age out, and the one taken is the least likely to have been
    closed by the server for idling."""
    server = await scripted(echo)
    first, second = await guard(
        asyncio.gather(send(pool, server.url + "/a"), send(pool, server.url + "/b"))
    )
    connection = {r.target: r.connection for r in server.received}
    for answer in (first, second):
        await guard(answer.content.read())
    first.release()
    second.release()
    await fetch(pool, server.url + "/c")
    assert server.received[-1].connection == connection["/b"]
    assert pool.idle_count() == 2


async def test_max_idle_bounds_what_is_kept(scripted: Start, pools: Callable[..., Pool]) -> None:
    pool = pools(max_idle=1)
    server = await scripted(echo)
    answers = await guard(
        asyncio.gather(send(pool, server.url + "/a"), send(pool, server.url + "/b"))
    )
    assert server.connections == 2
    for answer in answers:
        await guard(answer.content.read())
        answer.release()
    assert pool.idle_count() == 1
    await guard(until(lambda: server.open_connections() == 1))
    await fetch(pool, server.url + "/c")
    assert server.connections == 2  # the kept one served it


async def test_close_closes_idle_connections_and_what_comes_back_later(
    scripted: Start, pools: Callable[..., Pool]
) -> None:
    pool = pools()
    server = await scripted(echo)
    idle, out = await guard(
        asyncio.gather(send(pool, server.url + "/idle"), send(pool, server.url + "/out"))
    )
    connection = {r.target: r.connection for r in server.received}
    assert await guard(idle.content.read()) == b"/idle"
    idle.release()
    assert pool.idle_count() == 1
    await pool.close()
    assert pool.idle_count() == 0
    await server.ended(connection["/idle"])
    assert await guard(out.content.read()) == b"/out"
    out.release()  # read to its end, but the pool is closed
    assert pool.idle_count() == 0
    await server.ended(connection["/out"])
    await pool.close()  # twice is fine


async def test_connections_are_pooled_per_origin(scripted: Start, pool: Pool) -> None:
    first, second = await scripted(echo), await scripted(echo)
    await fetch(pool, first.url + "/a")
    await fetch(pool, second.url + "/b")
    assert pool.idle_count() == 2
    await fetch(pool, first.url + "/c")
    await fetch(pool, second.url + "/d")
    assert first.seen() == [(1, "/a"), (1, "/c")]
    assert second.seen() == [(1, "/b"), (1, "/d")]


# -- through the gateway ---------------------------------------------------------------------


def described(request: Received) -> list[Step]:
    """The request's method, target and body length; headers only for HEAD."""
    answer = reply(f"{request.method} {request.target} {len(request.body)}".encode())
    return [head_of(answer) if request.method == "HEAD" else answer]


async def test_gateway_keeps_one_upstream_connection_for_gets(
    make_gateway: Any, scripted: Start
) -> None:
    """GETs and HEADs through the gateway reuse one kept upstream connection of the lean pool;
    a POST with a body still goes through aiohttp's client, body whole."""
    server = await scripted(described)
    client = await make_gateway(
        {"app": bypass_app(server.url, timeouts={"connect": 1, "read": 5})}, BYPASS_POLICIES
    )
    for n in range(3):
        response = await client.get(f"/page/{n}?x={n}")
        assert response.status == 200
        assert await response.text() == f"GET /page/{n}?x={n} 0"
    head = await client.head("/page/head")
    assert head.status == 200
    assert await head.read() == b""
    posted = await client.post("/form", data=b"field=" + b"v" * 5000)
    assert await posted.text() == "POST /form 5006"
    again = await client.get("/last")
    assert await again.text() == "GET /last 0"

    gets = [r.connection for r in server.received if r.method in ("GET", "HEAD")]
    (post,) = [r for r in server.received if r.method == "POST"]
    assert gets == [1] * 5
    assert post.connection != 1  # aiohttp's own pool
    assert client.server.app[RUNTIME].pool.idle_count() == 1


@pytest.mark.parametrize(
    "method",
    [
        "GET",
        "POST",
    ],
)
async def test_gateway_answers_502_for_an_unparsable_upstream_answer(
    make_gateway: Any, scripted: Start, method: str
) -> None:
    server = await scripted(lambda request: [CONFLICTING[0], HOLD])
    client = await make_gateway(
        {"app": bypass_app(server.url, timeouts={"connect": 1, "read": 5})}, BYPASS_POLICIES
    )
    response = await client.request(method, "/broken", data=b"x" if method == "POST" else None)
    assert response.status == 502


async def test_gateway_closes_the_answer_when_forwarding_fails_before_the_relay(
    make_gateway: Any, scripted: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything that fails between the upstream's headers and the relay (a store error while
    holding intercept cookies, say) closes the upstream connection: it is neither leaked nor
    pooled with an unread answer on it."""
    from gateway.handlers.entry import proxy

    def broken(*_args: Any) -> Any:
        raise RuntimeError("failing on purpose")

    server = await scripted(described)
    client = await make_gateway(
        {"app": bypass_app(server.url, timeouts={"connect": 1, "read": 5})}, BYPASS_POLICIES
    )
    monkeypatch.setattr(proxy.http, "response_headers", broken)
    response = await client.get("/page")
    assert response.status == 500
    await guard(server.ended(1))
    assert client.server.app[RUNTIME].pool.idle_count() == 0
