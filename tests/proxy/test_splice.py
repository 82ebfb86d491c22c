"""Large bodies moved by the kernel (gateway/proxy/splice.py): byte for byte, exactly as long as
the upstream said, the client's connection still good afterwards, and every failure a cut."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from gateway.proxy import splice
from tests.proxy.helpers import BYPASS_POLICIES, bypass_app
from tests.proxy.upstream import pattern, pattern_digest

MIB = 1 << 20
pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="os.splice is Linux only")


class Scripted:
    """A raw upstream: `GET /big?size=N[&then=stall|close|extra]` answers N bytes of the test
    pattern with Content-Length N; `then` spoils it halfway (stall, close) or after the end
    (extra bytes that must never reach the client)."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                query = dict(p.split("=") for p in target.partition("?")[2].split("&") if p)
                size, then = int(query["size"]), query.get("then", "")
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                sent = 0
                for piece in pattern(size):
                    if then in ("stall", "close") and sent >= size // 2:
                        await writer.drain()
                        if then == "close":
                            writer.close()
                            return
                        await asyncio.sleep(30)
                    writer.write(piece)
                    sent += len(piece)
                    await writer.drain()
                if then == "extra":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED")
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    upstream = Scripted()
    upstream.server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    yield upstream
    upstream.server.close()
    await upstream.server.wait_closed()


@pytest.fixture
def spliced(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes handed to the kernel, so a test knows the splice path was taken."""
    calls: list[int] = []
    real = splice._splice

    async def counting(source: int, sink: int, remaining: int, timeout: float | None) -> None:
        calls.append(remaining)
        await real(source, sink, remaining, timeout)

    monkeypatch.setattr(splice, "_splice", counting)
    return calls


Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def gateway_for(make_gateway: Any, upstream: str, read: float = 5) -> tuple[Any, Opener]:
    client = await make_gateway(
        {"app": bypass_app(upstream, timeouts={"connect": 1, "read": read})}, BYPASS_POLICIES
    )
    port = client.server.port

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port, limit=4 * MIB)

    return client, connect


async def fetch(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str
) -> tuple[dict[str, str], bytes]:
    """One GET on an open connection: its headers and exactly Content-Length bytes of body."""
    writer.write(f"GET {target} HTTP/1.1\r\nHost: gateway\r\n\r\n".encode())
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    status, *lines = head.strip().split("\r\n")
    assert status.startswith("HTTP/1.1 200"), head
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return headers, body


async def test_large_body_is_spliced_exactly_and_the_connection_stays_good(
    make_gateway: Any, scripted: Scripted, spliced: list[int]
) -> None:
    """A 5 MiB answer goes through the kernel, byte for byte; the same client connection then
    carries a second request, so exactly Content-Length bytes were sent and nothing after."""
    _client, connect = await gateway_for(make_gateway, scripted.url)
    reader, writer = await connect()
    try:
        size = 5 * MIB + 17
        headers, body = await fetch(reader, writer, f"/big?size={size}")
        assert headers["content-length"] == str(size)
        assert hashlib.sha256(body).hexdigest() == pattern_digest(size)
        assert len(spliced) == 1 and 0 < spliced[0] <= size
        _headers, again = await fetch(reader, writer, "/big?size=100")
        assert again == b"".join(pattern(100))
    finally:
        writer.close()
    # the spliced upstream connection is not pooled: its parser never saw the body
    assert scripted.connections == 2


async def test_bytes_after_the_body_never_reach_the_client(
    make_gateway: Any, scripted: Scripted, spliced: list[int]
) -> None:
    """An upstream that writes a second answer after the declared length: the client gets the
    declared body only, and its next request gets a fresh answer, not the smuggled one."""
    _client, connect = await gateway_for(make_gateway, scripted.url)
    reader, writer = await connect()
    try:
        size = 2 * MIB
        _headers, body = await fetch(reader, writer, f"/big?size={size}&then=extra")
        assert hashlib.sha256(body).hexdigest() == pattern_digest(size)
        assert spliced
        _headers, again = await fetch(reader, writer, "/big?size=10")
        assert again == b"".join(pattern(10))
    finally:
        writer.close()


@pytest.mark.parametrize("then", ["close", "stall"])
async def test_upstream_failing_mid_body_cuts_the_client_connection(
    make_gateway: Any, scripted: Scripted, spliced: list[int], then: str
) -> None:
    """An upstream that closes, or stalls past the read timeout, halfway through a spliced body:
    the client's connection is cut short (never a complete-looking answer), and the gateway
    goes on serving."""
    client, connect = await gateway_for(make_gateway, scripted.url, read=0.5)
    reader, writer = await connect()
    size = 4 * MIB
    try:
        writer.write(f"GET /big?size={size}&then={then} HTTP/1.1\r\nHost: g\r\n\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        with pytest.raises(asyncio.IncompleteReadError) as cut:
            await asyncio.wait_for(reader.readexactly(size), timeout=10)
        assert len(cut.value.partial) < size
        assert spliced
    finally:
        writer.close()
    after = await client.get("/big?size=1000")
    assert await after.read() == b"".join(pattern(1000))


async def test_client_leaving_mid_body_leaves_the_gateway_serving(
    make_gateway: Any, scripted: Scripted, spliced: list[int]
) -> None:
    """A client that reads part of a spliced body and hangs up: the gateway stops, closes the
    upstream connection, and serves the next client."""
    client, connect = await gateway_for(make_gateway, scripted.url)
    reader, writer = await connect()
    writer.write(b"GET /big?size=67108864 HTTP/1.1\r\nHost: g\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(MIB)
    writer.transport.abort()
    await asyncio.sleep(0.2)
    after = await client.get("/big?size=1000")
    assert await after.read() == b"".join(pattern(1000))
    assert spliced


@pytest.mark.parametrize("size", [1000, splice.MIN_BODY // 2])
async def test_small_bodies_are_streamed_not_spliced(
    make_gateway: Any, scripted: Scripted, spliced: list[int], size: int
) -> None:
    """Below MIN_BODY a pipe is not worth it: the body is streamed as before, intact."""
    client, _connect = await gateway_for(make_gateway, scripted.url)
    response = await client.get(f"/big?size={size}")
    assert hashlib.sha256(await response.read()).hexdigest() == pattern_digest(size)
    assert spliced == []


async def test_chunked_bodies_are_streamed_not_spliced(
    make_gateway: Any, upstream: Any, upstream_url: str, spliced: list[int]
) -> None:
    """Without a Content-Length the gateway cannot know where the body ends without parsing it:
    chunked answers stream through Python, intact."""
    client, _connect = await gateway_for(make_gateway, upstream_url)
    size = 3 * MIB
    response = await client.get(f"/download?size={size}&chunked=1")
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert hashlib.sha256(await response.read()).hexdigest() == pattern_digest(size)
    assert spliced == []


class _Transport:
    def __init__(self, **extra: Any) -> None:
        self.extra = extra

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)


def test_tls_transports_are_never_spliced() -> None:
    """Bytes under TLS are ciphertext: a TLS transport on either side keeps the body in Python."""
    import socket

    with contextlib.closing(socket.socket()) as sock:
        assert splice._plain_socket(_Transport(socket=sock)) is sock  # type: ignore[arg-type]
        for tls in ({"sslcontext": object()}, {"ssl_object": object()}):
            transport = _Transport(socket=sock, **tls)
            assert splice._plain_socket(transport) is None  # type: ignore[arg-type]
    assert splice._plain_socket(None) is None


async def answering(answer: bytes) -> tuple[asyncio.Server, str]:
    """A raw upstream that gives every request on a connection the same bytes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    return server, f"http://{host}:{port}"


async def test_a_304_with_a_large_content_length_is_not_waited_for(
    make_gateway: Any, spliced: list[int]
) -> None:
    """A 304 may carry the Content-Length of the full page, but no body follows: the gateway
    answers at once and the connection serves the next request at once (it once waited the
    read timeout for a body that never comes, then cut the connection)."""
    head = b'HTTP/1.1 304 Not Modified\r\nContent-Length: 4194304\r\nETag: "x"\r\n\r\n'
    server, url = await answering(head)
    try:
        _client, connect = await gateway_for(make_gateway, url, read=30)
        reader, writer = await connect()
        try:
            for _ in range(2):
                writer.write(b'GET /a HTTP/1.1\r\nHost: g\r\nIf-None-Match: "x"\r\n\r\n')
                await writer.drain()
                head_back = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert head_back.startswith(b"HTTP/1.1 304")
        finally:
            writer.close()
        assert spliced == []
    finally:
        server.close()


async def test_a_body_under_chunked_framing_is_never_spliced(
    make_gateway: Any, spliced: list[int]
) -> None:
    """An application that names Content-Length in Connection gets it removed (hop-by-hop), so
    the client's answer is chunked. Raw bytes spliced under chunked framing would let a body
    holding "0\\r\\n\\r\\nHTTP/1.1 200 ..." end the answer early and pass for the next one; the
    body must arrive as data inside the chunks, and the next request get its own answer."""
    size = 2 * MIB
    inject = b"0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED"
    body = inject + b"A" * (size - len(inject))
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: content-length\r\n\r\n" % size
    server, url = await answering(head + body)
    try:
        client, _connect = await gateway_for(make_gateway, url)
        for _ in range(2):  # the second on the same pooled client connection
            response = await asyncio.wait_for(client.get("/a"), 10)
            assert response.headers.get("Transfer-Encoding") == "chunked"
            assert await asyncio.wait_for(response.read(), 10) == body
        assert spliced == []
    finally:
        server.close()
