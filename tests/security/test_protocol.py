"""Request smuggling and slow clients, byte for byte on raw sockets: every trick is refused at the
edge with a 4xx and a closed connection, and the recording upstream sees nothing, or exactly the
one request the client meant."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import build_runtime, create_app
from gateway.clock import FixedClock
from gateway.parser import ALLOW_PYTHON_PARSER, compiled_parser
from gateway.policy import load_policy_dir
from gateway.server import start
from gateway.settings import settings_from_dict
from tests.proxy.helpers import cookie_header, portal_verified
from tests.proxy.upstream import SEEN
from tests.security.conftest import POLICIES
from tests.support import GatewayProcess, portal_app, settings_dict

# /public/** passes without a session (bypass); /x needs a verified one.
ROUTES = {"bypass": "/public/x", "protected": "/x"}
SMUGGLED = "/smuggled"


@dataclass
class Browser:
    """The sign-in steps' client: an aiohttp session on the gateway's address."""

    session: aiohttp.ClientSession

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.session.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.session.post(path, **kwargs)


@dataclass
class Edge:
    port: int
    upstream: TestServer
    browser: Browser
    clock: FixedClock

    @property
    def seen(self) -> list[dict[str, Any]]:
        return self.upstream.app[SEEN]

    async def cookie_line(self, route: str) -> str:
        """A verified session's Cookie line for the protected route, nothing for the bypass one."""
        if route == "bypass":
            return ""
        if not cookie_header(self.browser):
            await portal_verified(self.browser, self.clock)
        return f"Cookie: {cookie_header(self.browser)}\r\n"


EdgeFactory = Callable[..., Awaitable[Edge]]


@pytest.fixture
async def make_edge(
    tmp_path: Path, upstream: TestServer, users_file: Path, clock: FixedClock
) -> AsyncIterator[EdgeFactory]:
    """A portal-mode gateway served as `gateway run` serves it (gateway.server.start), in front
    of the recording upstream or `behind`; keyword arguments are `listen:` settings."""
    running: list[tuple[web.AppRunner, aiohttp.ClientSession]] = []

    async def factory(behind: TestServer | None = None, **listen: Any) -> Edge:
        origin = str((behind or upstream).make_url("")).rstrip("/")
        data = settings_dict(tmp_path, {"app": portal_app(origin, users_file)}, POLICIES)
        data["listen"].update(port=0, **listen)
        settings = settings_from_dict(data, tmp_path / "gateway.yaml")
        policy = load_policy_dir(settings.policy_dir, known_apps=["app"])
        runtime = build_runtime(settings, policy, clock=clock)
        runner, url = await start(create_app(runtime), settings.listen)
        session = aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True))
        running.append((runner, session))
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        return Edge(port, behind or upstream, Browser(session), clock)

    yield factory
    for runner, session in running:
        await session.close()
        await runner.cleanup()


@dataclass
class Answer:
    raw: bytes
    closed: bool  # the gateway closed the connection (EOF or reset) before the wait ran out
    seconds: float

    @property
    def status(self) -> int | None:
        line = self.raw.split(b"\r\n", 1)[0]
        return int(line.split(b" ")[1]) if line.startswith(b"HTTP/1.") else None


async def exchange(port: int, data: bytes, wait: float = 5.0) -> Answer:
    """Write `data` as it is, then read until the gateway closes the connection or `wait` ends."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        raw, closed = await read_until_closed(reader, wait)
    finally:
        writer.close()
    return Answer(raw, closed, time.monotonic() - started)


async def read_until_closed(reader: asyncio.StreamReader, wait: float) -> tuple[bytes, bool]:
    received = b""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return received, False
        try:
            piece = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            return received, False
        except ConnectionError:
            return received, True
        if not piece:
            return received, True
        received += piece


def request(head: str, body: bytes = b"") -> bytes:
    return head.encode("latin-1") + body


def paths_seen(edge: Edge) -> list[str]:
    return [entry["path"] for entry in edge.seen]


# Framing the gateway and an application could read two ways. `{auth}` is the protected route's
# Cookie line. Each goes out with a second request right behind it (SMUGGLED), which must never
# reach the application either: the connection is closed after the refusal.
def _post(*lines: str, body: str = "", version: str = "HTTP/1.1") -> str:
    return (
        f"POST {{path}} {version}\r\n"
        + "".join(f"{line}\r\n" for line in lines)
        + "{auth}\r\n"
        + body
    )


HOST = "Host: gw.example"
CHUNKED = "Transfer-Encoding: chunked"
REFUSED: dict[str, tuple[str, int]] = {
    "Content-Length and chunked": (
        _post(HOST, "Content-Length: 5", CHUNKED, body="0\r\n\r\n"),
        400,
    ),
    "chunked and Content-Length": (
        _post(HOST, CHUNKED, "Content-Length: 5", body="0\r\n\r\n"),
        400,
    ),
    "two equal Content-Lengths": (
        _post(HOST, "Content-Length: 3", "Content-Length: 3", body="abc"),
        400,
    ),
    "two Content-Lengths": (
        _post(HOST, "Content-Length: 3", "Content-Length: 4", body="abcd"),
        400,
    ),
    "Content-Length list": (_post(HOST, "Content-Length: 3, 3", body="abc"), 400),
    "signed Content-Length": (_post(HOST, "Content-Length: +3", body="abc"), 400),
    "negative Content-Length": (_post(HOST, "Content-Length: -3", body="abc"), 400),
    "hex Content-Length": (_post(HOST, "Content-Length: 0x3", body="abc"), 400),
    "Content-Length with a space": (_post(HOST, "Content-Length: 1 2", body="abc"), 400),
    "Content-Length past 64 bits": (
        _post(HOST, "Content-Length: 99999999999999999999", body="a"),
        400,
    ),
    "unknown transfer coding": (_post(HOST, "Transfer-Encoding: xchunked", body="0\r\n\r\n"), 400),
    "chunked, identity": (
        _post(HOST, "Transfer-Encoding: chunked, identity", body="0\r\n\r\n"),
        400,
    ),
    "identity, chunked": (
        _post(HOST, "Transfer-Encoding: identity, chunked", body="0\r\n\r\n"),
        400,
    ),
    "gzip, chunked": (
        _post(HOST, "Transfer-Encoding: gzip, chunked", body="3\r\nabc\r\n0\r\n\r\n"),
        400,
    ),
    "gzip alone": (_post(HOST, "Transfer-Encoding: gzip", body="abc"), 400),
    "space before the colon": (_post(HOST, "Transfer-Encoding : chunked", body="0\r\n\r\n"), 400),
    "two Transfer-Encoding lines": (_post(HOST, CHUNKED, CHUNKED, body="0\r\n\r\n"), 400),
    "folded Transfer-Encoding": (
        _post(HOST, "Transfer-Encoding:\r\n chunked", body="0\r\n\r\n"),
        400,
    ),
    "vertical tab before chunked": (
        _post(HOST, "Transfer-Encoding:\x0bchunked", body="0\r\n\r\n"),
        400,
    ),
    "quoted chunked": (_post(HOST, 'Transfer-Encoding: "chunked"', body="0\r\n\r\n"), 400),
    "chunked in HTTP/1.0": (
        _post(HOST, CHUNKED, body="3\r\nabc\r\n0\r\n\r\n", version="HTTP/1.0"),
        400,
    ),
    "chunk size ended by a bare LF": (_post(HOST, CHUNKED, body="3\nabc\r\n0\r\n\r\n"), 400),
    "chunk size with junk": (_post(HOST, CHUNKED, body="3x\r\nabc\r\n0\r\n\r\n"), 400),
    "bare LF line ends": ("GET {path} HTTP/1.1\n" + HOST + "\n{auth}\n", 400),
    "one bare LF": ("GET {path} HTTP/1.1\r\n" + HOST + "\nX-Sneaky: 1\r\n{auth}\r\n", 400),
    "one bare CR": ("GET {path} HTTP/1.1\r\n" + HOST + "\rX-Sneaky: 1\r\n{auth}\r\n", 400),
    "NUL in a value": ("GET {path} HTTP/1.1\r\n" + HOST + "\r\nX-A: b\x00c\r\n{auth}\r\n", 400),
    "duplicate Host": (
        "GET {path} HTTP/1.1\r\n" + HOST + "\r\nHost: evil.example\r\n{auth}\r\n",
        400,
    ),
    "Host with a comma": (
        "GET {path} HTTP/1.1\r\nHost: gw.example,evil.example\r\n{auth}\r\n",
        400,
    ),
    "Host with a space": (
        "GET {path} HTTP/1.1\r\nHost: gw.example evil.example\r\n{auth}\r\n",
        400,
    ),
    "Host with a path": ("GET {path} HTTP/1.1\r\nHost: gw.example/evil\r\n{auth}\r\n", 400),
    "empty Host": ("GET {path} HTTP/1.1\r\nHost: \r\n{auth}\r\n", 400),
    "no Host": ("GET {path} HTTP/1.1\r\n{auth}\r\n", 400),
    "h2c upgrade": (
        "GET {path} HTTP/1.1\r\n" + HOST + "\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n{auth}\r\n",
        400,
    ),
    "h2c without Connection": (
        "GET {path} HTTP/1.1\r\n" + HOST + "\r\nUpgrade: h2c\r\n{auth}\r\n",
        400,
    ),
    "WebSocket upgrade with a body": (
        _post(
            HOST,
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Content-Length: 5",
            body="hello",
        ).replace("POST", "GET", 1),
        400,
    ),
    "CONNECT": ("CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n{auth}\r\n", 405),
    "HTTP/2 preface": ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    "long header line": (
        "GET {path} HTTP/1.1\r\n" + HOST + "\r\nX-Big: " + "a" * 2100 + "\r\n{auth}\r\n",
        431,
    ),
    "long request line": (
        "GET {path}?" + "a" * 2100 + " HTTP/1.1\r\n" + HOST + "\r\n{auth}\r\n",
        431,
    ),
    "too many headers": (
        "GET {path} HTTP/1.1\r\n"
        + HOST
        + "\r\n"
        + "".join(f"X-{n}: v\r\n" for n in range(25))
        + "{auth}\r\n",
        431,
    ),
    "Content-Length over max_body_size": (
        _post(HOST, "Content-Length: 1001", body="a" * 1001),
        413,
    ),
}
# The same shapes made right: each reaches the application exactly once, as sent.
ACCEPTED: dict[str, tuple[str, int]] = {
    "chunked": (_post(HOST, CHUNKED, "Connection: close", body="3\r\nabc\r\n0\r\n\r\n"), 3),
    "CHUNKED in capitals": (
        _post(
            HOST, "Transfer-Encoding: CHUNKED", "Connection: close", body="3\r\nabc\r\n0\r\n\r\n"
        ),
        3,
    ),
    "a request inside a body": (
        _post(
            HOST,
            "Content-Length: 43",
            "Connection: close",
            body=f"GET {SMUGGLED} HTTP/1.1\r\nHost: gw.example\r\n\r\n",
        ),
        43,
    ),
    "headers at the limits": (
        _post(HOST, "Connection: close", *[f"X-{n}: {'v' * 1900}" for n in range(14)], body=""),
        0,
    ),
    "Content-Length at max_body_size": (
        _post(HOST, "Content-Length: 1000", "Connection: close", body="a" * 1000),
        1000,
    ),
}
FRAMING_LIMITS = {"max_header_size": 2048, "max_headers": 20, "max_body_size": 1000}


@pytest.mark.parametrize("route", ROUTES)
async def test_ambiguous_framing_is_refused_and_nothing_is_forwarded(
    make_edge: EdgeFactory, route: str
) -> None:
    """Every ambiguous or oversized head gets its 4xx and a closed connection; neither it nor the request behind it reaches the application."""
    edge = await make_edge(**FRAMING_LIMITS)
    auth = await edge.cookie_line(route)
    tail = f"GET {SMUGGLED} HTTP/1.1\r\n{HOST}\r\n{auth}\r\n".encode()
    wrong = []
    for name, (template, status) in REFUSED.items():
        before = len(edge.seen)
        answer = await exchange(
            edge.port, request(template.format(path=ROUTES[route], auth=auth)) + tail
        )
        forwarded = paths_seen(edge)[before:]
        if answer.status != status or not answer.closed or forwarded:
            wrong.append(f"{name}: {answer.status} closed={answer.closed} forwarded={forwarded}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("route", ROUTES)
async def test_well_framed_requests_reach_the_application_exactly_once(
    make_edge: EdgeFactory, route: str
) -> None:
    """The accepted spellings of the refused shapes are forwarded once each, with the body the client framed."""
    edge = await make_edge(**FRAMING_LIMITS)
    auth = await edge.cookie_line(route)
    wrong = []
    for name, (template, length) in ACCEPTED.items():
        before = len(edge.seen)
        answer = await exchange(edge.port, request(template.format(path=ROUTES[route], auth=auth)))
        forwarded = edge.seen[before:]
        shape = [(entry["method"], entry["path"], entry["body_length"]) for entry in forwarded]
        if answer.status != 200 or shape != [("POST", ROUTES[route], length)]:
            wrong.append(f"{name}: {answer.status} forwarded={shape}")
    assert not wrong, "\n".join(wrong)


async def test_a_body_over_the_limit_is_refused_by_its_length_before_it_is_sent(
    make_edge: EdgeFactory,
) -> None:
    """With a Content-Length over max_body_size the 413 comes back before a byte of the body is sent, and the connection closes."""
    edge = await make_edge(max_body_size=1000)
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(
            request(_post(HOST, "Content-Length: 5000000").format(path="/public/x", auth=""))
        )
        raw, closed = await read_until_closed(reader, 5)
    finally:
        writer.close()
    assert raw.startswith(b"HTTP/1.0 413 "), raw[:200]
    assert closed and edge.seen == []


@pytest.mark.parametrize("route", ROUTES)
async def test_a_chunked_body_growing_past_the_limit_never_reaches_the_application_whole(
    make_edge: EdgeFactory, route: str
) -> None:
    """A chunked body is cut the moment it passes max_body_size, half way through its trip upstream: the application never gets a complete request, and the client's connection is closed without a 200 or a 500."""
    edge = await make_edge(max_body_size=100_000)
    auth = await edge.cookie_line(route)
    head = _post(HOST, CHUNKED).format(path=ROUTES[route], auth=auth)
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(request(head, b"%x\r\n%s\r\n" % (60_000, b"a" * 60_000)))
        await writer.drain()
        await asyncio.sleep(0.2)  # the first piece is on its way upstream
        writer.write(b"%x\r\n%s\r\n" % (60_000, b"b" * 60_000))
        raw, closed = await read_until_closed(reader, 5)
    finally:
        writer.close()
    assert closed
    assert Answer(raw, closed, 0).status not in (200, 500), raw[:300]
    assert all(entry["path"] != ROUTES[route] for entry in edge.seen), edge.seen


async def test_a_chunked_body_past_the_limit_is_answered_413(make_edge: EdgeFactory) -> None:
    """The client whose chunked upload was cut for its size is told so with 413."""
    edge = await make_edge(max_body_size=1000)
    head = _post(HOST, CHUNKED).format(path="/public/x", auth="")
    answer = await exchange(edge.port, request(head, b"7d0\r\n" + b"a" * 2000 + b"\r\n0\r\n\r\n"))
    assert answer.status == 413, answer.raw[:300]
    assert answer.closed and edge.seen == []


async def test_a_gateway_form_with_a_chunked_body_past_the_limit_is_answered_413(
    make_edge: EdgeFactory,
) -> None:
    """The gateway's own pages read the body themselves and meet the cut: a 413 page, nothing signed in."""
    edge = await make_edge(max_body_size=1000)
    head = _post(HOST, CHUNKED, "Content-Type: application/x-www-form-urlencoded")
    body = b"7d0\r\n" + b"a" * 2000 + b"\r\n0\r\n\r\n"
    answer = await exchange(edge.port, request(head.format(path="/.gateway/login", auth=""), body))
    assert answer.status == 413, answer.raw[:300]
    assert answer.closed and edge.seen == []


async def test_a_stalled_body_is_cut_after_the_body_timeout(make_edge: EdgeFactory) -> None:
    """A body that stops arriving is cut after body_timeout: the connection closes and the application never gets a complete request."""
    edge = await make_edge(body_timeout=0.5)
    head = _post(HOST, "Content-Length: 100").format(path="/public/x", auth="")
    answer = await exchange(edge.port, request(head, b"a" * 10), wait=8)
    assert answer.closed and 0.45 <= answer.seconds < 8, answer
    assert answer.status not in (200, 500), answer.raw[:300]
    assert edge.seen == []


async def test_a_stalled_proxied_body_is_answered_408(make_edge: EdgeFactory) -> None:
    """The client whose upload stalled is told so with 408."""
    edge = await make_edge(body_timeout=0.5)
    head = _post(HOST, "Content-Length: 100").format(path="/public/x", auth="")
    answer = await exchange(edge.port, request(head, b"a" * 10), wait=8)
    assert answer.status == 408, answer.raw[:300]


async def test_a_stalled_form_is_answered_408(make_edge: EdgeFactory) -> None:
    """A gateway page whose form stops arriving answers 408 and closes the connection."""
    edge = await make_edge(body_timeout=0.5)
    head = _post(HOST, "Content-Length: 100", "Content-Type: application/x-www-form-urlencoded")
    answer = await exchange(
        edge.port, request(head.format(path="/.gateway/login", auth=""), b"a=b")
    )
    assert answer.status == 408 and answer.closed, answer.raw[:300]


async def test_a_slow_but_steady_body_is_not_cut(make_edge: EdgeFactory) -> None:
    """body_timeout is the gap between two pieces, not the whole upload: a body trickling in for four timeouts arrives whole."""
    edge = await make_edge(body_timeout=0.5)
    head = _post(HOST, "Content-Length: 20", "Connection: close").format(path="/public/x", auth="")
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(request(head))
        for _ in range(20):
            await asyncio.sleep(0.1)
            writer.write(b"a")
        raw, closed = await read_until_closed(reader, 5)
    finally:
        writer.close()
    assert raw.startswith(b"HTTP/1.1 200 ") and closed, raw[:300]
    assert [(entry["path"], entry["body_length"]) for entry in edge.seen] == [("/public/x", 20)]


async def test_time_the_gateway_waits_on_the_application_is_not_the_clients(
    make_edge: EdgeFactory,
) -> None:
    """An upload the gateway stops reading because the application has not taken it yet (full buffers) is not a stalled client: it is not cut."""
    taken: list[int] = []

    async def late_reader(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)  # three body timeouts with every buffer on the way full
        taken.append(len(await request.read()))
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/public/upload", late_reader)
    async with TestServer(app, host="127.0.0.1") as late:
        edge = await make_edge(late, body_timeout=0.5)
        size = 24 << 20  # more than the kernel and both aiohttp ends buffer on loopback
        head = _post(HOST, f"Content-Length: {size}", "Connection: close")
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        try:
            writer.write(request(head.format(path="/public/upload", auth="")))
            for _ in range(size >> 20):
                writer.write(b"u" * (1 << 20))
                await writer.drain()
            raw, _closed = await read_until_closed(reader, 10)
        finally:
            writer.close()
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:300]
    assert taken == [size]


async def test_a_slow_head_gets_408_after_the_header_timeout_however_it_trickles(
    make_edge: EdgeFactory,
) -> None:
    """A head sent a byte at a time never completes: header_timeout counts from the start, so the trickle does not extend it; 408, then the connection closes."""
    edge = await make_edge(header_timeout=0.5)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    trickle = asyncio.create_task(
        _trickle(writer, b"GET /public/x HTTP/1.1\r\nHost: gw.example\r\nX-")
    )
    try:
        raw, closed = await read_until_closed(reader, 8)
    finally:
        trickle.cancel()
        writer.close()
    took = time.monotonic() - started
    assert closed and 0.45 <= took < 8, took
    assert raw.startswith(b"HTTP/1.1 408 "), raw
    assert edge.seen == []


async def _trickle(writer: asyncio.StreamWriter, start: bytes, every: float = 0.1) -> None:
    """`start`, then one more header-name byte every `every` seconds, until the peer is gone."""
    writer.write(start)
    try:
        while not writer.is_closing():
            await asyncio.sleep(every)
            writer.write(b"x")
            await writer.drain()
    except ConnectionError:
        pass


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    make_edge: EdgeFactory,
) -> None:
    """A new connection owes its first head within header_timeout too; with nothing sent there is nothing to answer, it is just closed."""
    edge = await make_edge(header_timeout=0.5)
    answer = await exchange(edge.port, b"", wait=8)
    assert answer.closed and answer.raw == b"" and 0.45 <= answer.seconds < 8, answer


async def test_a_kept_alive_connection_may_idle_but_not_dawdle_over_its_next_head(
    make_edge: EdgeFactory,
) -> None:
    """Between requests the keep-alive timeout applies, not header_timeout; the next head, once begun, must arrive within header_timeout."""
    edge = await make_edge(header_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    get = b"GET /public/x HTTP/1.1\r\nHost: gw.example\r\n\r\n"
    try:
        for _ in range(2):
            writer.write(get)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 "), head
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            await asyncio.sleep(1.0)  # two header timeouts of idling
        started = time.monotonic()
        writer.write(get[:20])
        raw, closed = await read_until_closed(reader, 8)
    finally:
        writer.close()
    assert closed and raw.startswith(b"HTTP/1.1 408 "), raw
    assert 0.45 <= time.monotonic() - started < 8
    assert paths_seen(edge) == ["/public/x", "/public/x"]


async def test_two_hundred_slowloris_connections_do_not_stop_other_clients(
    make_edge: EdgeFactory,
) -> None:
    """While 200 connections trickle their heads, other clients are served on both routes; every slow connection is closed (408) once its header timeout has passed."""
    timeout = 1.5
    edge = await make_edge(header_timeout=timeout)
    auth = await edge.cookie_line("protected")
    closed_at: list[float] = []
    answers: list[bytes] = []

    async def slowloris() -> None:
        opened = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        trickle = asyncio.create_task(_trickle(writer, b"GET /public/x HTTP/1.1\r\nX-"))
        try:
            raw, closed = await read_until_closed(reader, timeout + 8)
        finally:
            trickle.cancel()
            writer.close()
        if closed:
            closed_at.append(time.monotonic() - opened)
            answers.append(raw)

    crowd = [asyncio.create_task(slowloris()) for _ in range(200)]
    await asyncio.sleep(0.3)  # the crowd is connected and trickling
    served = []
    for route in [*ROUTES] * 5:
        get = f"GET {ROUTES[route]} HTTP/1.1\r\n{HOST}\r\nConnection: close\r\n"
        served.append(
            (
                await exchange(
                    edge.port, request(get + (auth if route != "bypass" else "") + "\r\n")
                )
            ).status
        )
    still_open = 200 - len(closed_at)
    await asyncio.gather(*crowd)
    assert served == [200] * 10
    assert still_open >= 150, "the crowd was not there while the others were served"
    assert len(closed_at) == 200
    assert min(closed_at) >= timeout - 0.05 and max(closed_at) < timeout + 8, (
        min(closed_at),
        max(closed_at),
    )
    assert all(raw.startswith(b"HTTP/1.1 408 ") for raw in answers)
    assert paths_seen(edge).count("/public/x") == 5


async def test_h2c_is_refused_and_websocket_still_upgrades(make_edge: EdgeFactory) -> None:
    """Upgrade: h2c is refused on both routes while a WebSocket upgrade through the same edge, with the verified session, still relays frames."""
    edge = await make_edge()
    auth = await edge.cookie_line("protected")
    for route, cookie in (("bypass", ""), ("protected", auth)):
        h2c = (
            f"GET {ROUTES[route]} HTTP/1.1\r\n{HOST}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            f"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n{cookie}\r\n"
        )
        answer = await exchange(edge.port, request(h2c))
        assert answer.status == 400 and answer.closed, (route, answer.raw[:200])
    assert edge.seen == []
    async with edge.browser.session.ws_connect("/ws") as ws:
        hello = await ws.receive_json(timeout=3)
        assert "protocol" in hello
        await ws.send_str("still here")
        assert (await ws.receive(timeout=3)).data == "still here"
    assert paths_seen(edge) == ["/ws"]


async def test_a_compressed_body_is_forwarded_as_the_client_sent_it(make_edge: EdgeFactory) -> None:
    """A gzip request body goes upstream still compressed, under its Content-Encoding (aiohttp would otherwise decode it and forward plain bytes labelled gzip)."""
    edge = await make_edge()
    body = gzip.compress(b"hello, application", mtime=0)
    head = _post(
        HOST, "Content-Encoding: gzip", f"Content-Length: {len(body)}", "Connection: close"
    )
    answer = await exchange(edge.port, request(head.format(path="/public/x", auth=""), body))
    assert answer.status == 200, answer.raw[:300]
    [entry] = edge.seen  # the upstream decoded what it got: it was still gzip
    assert entry["body_sha256"] == hashlib.sha256(b"hello, application").hexdigest()


def test_the_compiled_parser_is_the_one_in_use() -> None:
    """This test run, like a deployment, parses with llhttp, so the framing checks above are its verdicts."""
    assert compiled_parser()


async def _run(tmp: Path, upstream: TestServer, users: Path, **listen: Any) -> GatewayProcess:
    """`gateway run` in its own process, its settings in tmp."""
    origin = str(upstream.make_url("")).rstrip("/")
    data = settings_dict(tmp, {"app": portal_app(origin, users)}, POLICIES)
    data["listen"].update(listen)
    return await asyncio.to_thread(GatewayProcess.run, tmp, data)


async def test_gateway_run_says_which_parser_it_uses_and_holds_connections_to_the_limits(
    tmp_path: Path, upstream: TestServer, users_file: Path
) -> None:
    """`gateway run` logs that the compiled parser is in use, and serves with the listen: limits (a slow head gets its 408)."""
    gateway = await _run(tmp_path, upstream, users_file, header_timeout=0.5)
    try:
        answer = await exchange(gateway.port, b"GET /public/x HTTP/1.1\r\nHost: gw", wait=8)
    finally:
        gateway.stop()
    assert answer.closed and answer.raw.startswith(b"HTTP/1.1 408 "), answer
    assert "parsed by aiohttp's compiled parser (llhttp)" in gateway.log.read_text()


async def test_gateway_run_refuses_the_pure_python_parser_unless_told(
    tmp_path: Path, upstream: TestServer, users_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under AIOHTTP_NO_EXTENSIONS the gateway will not start and says why and what to do; with GATEWAY_ALLOW_PYTHON_PARSER=1 it starts, warns, and still refuses every ambiguous head."""
    monkeypatch.setenv("AIOHTTP_NO_EXTENSIONS", "1")
    with pytest.raises(RuntimeError) as refused:
        await _run(tmp_path / "refused", upstream, users_file)
    message = str(refused.value)
    assert "cannot start: aiohttp would parse HTTP with its pure-Python parser" in message
    assert "AIOHTTP_NO_EXTENSIONS is set" in message and f"{ALLOW_PYTHON_PARSER}=1" in message

    monkeypatch.setenv(ALLOW_PYTHON_PARSER, "1")
    gateway = await _run(tmp_path / "allowed", upstream, users_file, **FRAMING_LIMITS)
    wrong = []
    try:
        tail = f"GET {SMUGGLED} HTTP/1.1\r\n{HOST}\r\n\r\n".encode()
        for name, (template, _status) in REFUSED.items():
            before = len(upstream.app[SEEN])
            data = request(template.format(path="/public/x", auth="")) + tail
            answer = await exchange(gateway.port, data)
            forwarded = [entry["path"] for entry in upstream.app[SEEN][before:]]
            if not (400 <= (answer.status or 0) < 500 and answer.closed and not forwarded):
                wrong.append(f"{name}: {answer.status} closed={answer.closed} {forwarded}")
    finally:
        gateway.stop()
    assert "pure-Python parser (AIOHTTP_NO_EXTENSIONS is set)" in gateway.log.read_text()
    assert not wrong, "\n".join(wrong)


WEBSOCKET_HEAD = (
    "GET /ws HTTP/1.1\r\nHost: gw.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
)


async def test_heads_behind_a_declined_upgrade_get_the_same_checks(make_edge: EdgeFactory) -> None:
    """What a client pipelines behind a WebSocket upgrade the gateway turns down (no session) is parsed late, by another path in aiohttp, and is still refused: the h2c request behind it gets its 400 and reaches nobody."""
    edge = await make_edge()
    h2c = f"GET /public/x HTTP/1.1\r\n{HOST}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    tail = f"GET {SMUGGLED} HTTP/1.1\r\n{HOST}\r\n\r\n"
    answer = await exchange(edge.port, request(WEBSOCKET_HEAD + h2c + tail))
    statuses = [
        int(line.split(b" ")[1])
        for line in answer.raw.split(b"\r\n")
        if line.startswith(b"HTTP/1.")
    ]
    assert statuses[-1] == 400 and 400 not in statuses[:-1] and answer.closed, answer.raw
    assert edge.seen == []


async def test_a_body_cut_after_the_answer_just_closes_the_connection(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A request answered without its body being read (here: no session, sent to sign in) has the rest of its body read and dropped; when that stalls past body_timeout the connection is closed, with no error logged."""
    edge = await make_edge(body_timeout=0.5)
    head = _post(HOST, CHUNKED).format(path="/x", auth="")
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    try:
        writer.write(request(head, b"%x\r\n%s\r\n" % (1000, b"a" * 1000)))
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        started = time.monotonic()
        _raw, closed = await read_until_closed(reader, 8)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 303 "), answer
    assert closed and 0.3 <= time.monotonic() - started < 8
    assert edge.seen == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
