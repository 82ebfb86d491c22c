"""What is forwarded and how: methods and bodies, encodings, paths, and the upstream's failures."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.proxy.helpers import BYPASS_POLICIES, bypass_app, raw_request
from tests.proxy.upstream import GZIP_BODY, SEEN, pattern
from tests.support import free_port

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND")
NO_AUTO = ("User-Agent", "Accept-Encoding", "Content-Type")


def _headers(entry: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in entry["headers"]}


@pytest.fixture
async def gateway(make_gateway: Any, upstream_url: str) -> Any:
    return await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)


@pytest.mark.parametrize("method", METHODS)
async def test_every_method_reaches_upstream_with_its_body(
    gateway: Any, upstream: TestServer, method: str
) -> None:
    """Each method, standard or not, reaches the upstream as sent, with its body byte for byte."""
    body = b"" if method in ("GET", "HEAD") else method.encode() + bytes(range(256)) * 40
    response = await gateway.request(
        method,
        "/things/1?x=1",
        data=body or None,
        headers={"Content-Type": "application/x-test"} if body else {},
        skip_auto_headers=NO_AUTO,
    )
    assert response.status == 200
    (entry,) = upstream.app[SEEN]
    assert entry["method"] == method
    assert entry["raw_path"] == "/things/1?x=1"
    assert entry["body_length"] == len(body)
    assert entry["body_sha256"] == hashlib.sha256(body).hexdigest()
    seen = _headers(entry)
    if body:
        assert seen["content-length"] == str(len(body))
        assert seen["content-type"] == "application/x-test"
    else:
        assert "content-type" not in seen
        assert "transfer-encoding" not in seen
    assert "user-agent" not in seen  # nothing the client did not send is added
    if method == "HEAD":
        assert await response.read() == b""
        assert int(response.headers["Content-Length"]) > 0
    else:
        assert (await response.json())["method"] == method


async def test_chunked_request_body_arrives_intact(gateway: Any, upstream: TestServer) -> None:
    """A chunked request body, from aiohttp's streaming client and hand-made, reaches upstream intact."""

    async def pieces() -> Any:
        for piece in pattern(3 * 1024 * 1024 + 5, chunk=100_000):
            yield piece

    streamed = await gateway.post("/echo", data=pieces())
    expected = hashlib.sha256(b"".join(pattern(3 * 1024 * 1024 + 5, chunk=100_000))).hexdigest()
    assert (await streamed.json())["body_sha256"] == expected

    body = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"
    raw = await raw_request(
        gateway.server.host,
        gateway.server.port,
        "/echo",
        [("Transfer-Encoding", "chunked"), ("Connection", "close")],
        method="PUT",
        body=body,
        raw_body=True,
    )
    assert raw.status == 200
    entry = upstream.app[SEEN][-1]
    assert entry["method"] == "PUT"
    assert entry["body_length"] == len(b"hello world!")
    assert entry["body_sha256"] == hashlib.sha256(b"hello world!").hexdigest()


@pytest.mark.parametrize("accept", [None, "gzip", "br;q=1.0, gzip;q=0.5, *;q=0"])
async def test_gzip_passes_through_untouched(
    gateway: Any, upstream: TestServer, accept: str | None
) -> None:
    """A gzip body arrives byte-identical with its Content-Encoding; upstream sees exactly the client's Accept-Encoding."""
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    response = await gateway.get(
        "/gzip", headers=headers, skip_auto_headers=NO_AUTO, auto_decompress=False
    )
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Content-Length"] == str(len(GZIP_BODY))
    assert await response.read() == GZIP_BODY
    seen = [v for k, v in upstream.app[SEEN][-1]["headers"] if k.lower() == "accept-encoding"]
    assert seen == ([] if accept is None else [accept])


async def test_gateway_paths_are_never_forwarded(gateway: Any, upstream: TestServer) -> None:
    """Unknown /.gateway/ addresses, however spelled, get the gateway's 404 and never reach upstream."""
    for target in (
        "/.gateway/anything-unknown",
        "/.gateway",
        "/.gateway/",
        "/.gateway/admin/../nothing",
        "/x/../.gateway/unknown",
        "/%2egateway/unknown",
        "//.gateway/unknown",
        "/.gateway/unknown?rd=/x",
    ):
        raw = await raw_request(
            gateway.server.host, gateway.server.port, target, [("Connection", "close")]
        )
        assert raw.status == 404, target
        assert b"Page not found" in raw.body, target
    response = await gateway.post("/.gateway/unknown", data=b"x")
    assert response.status == 404
    assert upstream.app[SEEN] == []


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        ("/a/../b", "/b"),
        ("/a/./b//c", "/a/b/c"),
        ("/a/%2e%2e/b?q=%2F..%2F", "/b?q=%2F..%2F"),
        ("/%61dmin/", "/admin/"),
        ("/a%20b/caf%C3%A9", "/a%20b/caf%C3%A9"),
        ("/100%25/x", "/100%25/x"),
        ("/../../etc/passwd", "/etc/passwd"),
        # the query is the target's, split as the HTTP parser splits it: from the first "?" to
        # a "#" (a fragment is never forwarded), its bytes as sent
        ("/a?q=1#frag?x=2", "/a?q=1"),
        ("/a#frag?x=2", "/a"),
        ("/a?x=%ZZ&y=?&z=a?b", "/a?x=%ZZ&y=?&z=a?b"),
        ("/a?", "/a"),
    ],
)
async def test_path_is_normalised_before_forwarding(
    gateway: Any, upstream: TestServer, target: str, forwarded: str
) -> None:
    """The upstream receives the normalised path (dot segments resolved, decoded once) and the raw query."""
    raw = await raw_request(
        gateway.server.host, gateway.server.port, target, [("Connection", "close")]
    )
    assert raw.status == 200, raw.body
    (entry,) = upstream.app[SEEN]
    assert entry["raw_path"] == forwarded


@pytest.mark.parametrize(
    "target", ["/a%2fb", "/a%2Fb", "/public/..%2fadmin", "/a%5cb", "/a%00b", "/a\\b", "/%ff"]
)
async def test_ambiguous_paths_are_refused(gateway: Any, upstream: TestServer, target: str) -> None:
    """An encoded separator, NUL, backslash or bad UTF-8 in the path gets a 400 and never reaches upstream."""
    raw = await raw_request(
        gateway.server.host, gateway.server.port, target, [("Connection", "close")]
    )
    assert raw.status == 400
    assert upstream.app[SEEN] == []


def _assert_clean_error_page(body: str, upstream_port: int) -> None:
    assert "<html" in body.lower()
    assert "Traceback" not in body
    assert 'File "' not in body
    assert f":{upstream_port}" not in body  # the internal address is not shown


async def test_dead_upstream_gives_a_clear_502(make_gateway: Any) -> None:
    """An upstream with nothing listening gives a 502 HTML page without traceback or internals."""
    port = free_port()
    client = await make_gateway(
        {"app": bypass_app(f"http://127.0.0.1:{port}", timeouts={"connect": 1, "read": 0.5})},
        BYPASS_POLICIES,
    )
    for method in ("GET", "POST"):
        response = await client.request(
            method, "/anything", data=b"x" if method == "POST" else None
        )
        assert response.status == 502
        assert response.headers["Content-Type"].startswith("text/html")
        body = await response.text()
        assert "The application is not answering" in body
        _assert_clean_error_page(body, port)


async def test_slow_upstream_gives_504(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """An upstream slower than the read timeout gives a 504 page after about that timeout."""
    client = await make_gateway(
        {"app": bypass_app(upstream_url, timeouts={"connect": 1, "read": 0.5})}, BYPASS_POLICIES
    )
    started = time.monotonic()
    response = await client.get("/slow?delay=2")
    elapsed = time.monotonic() - started
    assert response.status == 504
    body = await response.text()
    assert "The application took too long" in body
    _assert_clean_error_page(body, upstream.port or 0)
    assert elapsed < 1.8
    fast = await client.get("/slow?delay=0.1")
    assert fast.status == 200 and await fast.text() == "finally"


async def test_upstream_stalling_mid_body_cuts_the_connection(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """An upstream that stalls after the headers past the read timeout ends in a cut, never a short 200."""
    client = await make_gateway(
        {"app": bypass_app(upstream_url, timeouts={"connect": 1, "read": 0.5})}, BYPASS_POLICIES
    )
    response = await client.get("/stall?delay=2")
    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()


@pytest.mark.parametrize(
    ("method", "status", "body"),
    [
        ("GET", 200, b"x" * 1000),
        ("GET", 201, b""),
        ("GET", 204, b""),
        ("GET", 304, b""),
        ("GET", 404, b"not here"),
        ("HEAD", 200, b"x" * 1000),
    ],
)
async def test_small_answers_keep_status_headers_and_body(
    make_gateway: Any, method: str, status: int, body: bytes
) -> None:
    """An answer that arrives whole goes back in one piece (gateway/proxy/http.py relay) with
    the upstream's status, headers and body as they were: no Content-Type added, no length
    invented for HEAD, 204 or 304."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"ETag": '"v1"', "X-App": "1"})
        if status not in (204, 304):
            response.content_length = len(body)
        await response.prepare(request)
        if request.method != "HEAD" and status not in (204, 304):
            await response.write(body)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    upstream = TestServer(app, host="127.0.0.1")
    await upstream.start_server()
    try:
        client = await make_gateway(
            {"app": bypass_app(str(upstream.make_url("")))}, BYPASS_POLICIES
        )
        got = await raw_request(client.host, client.port, "/page", method=method)
        direct = await raw_request("127.0.0.1", upstream.port or 0, "/page", method=method)
    finally:
        await upstream.close()
    assert got.status == direct.status == status

    def described(response: Any) -> list[tuple[str, str]]:
        own = {"date", "server", "connection", "keep-alive"}
        return sorted((n.lower(), v) for n, v in response.headers if n.lower() not in own)

    assert described(got) == described(direct)
    assert got.get("ETag") == ['"v1"'] and got.get("X-App") == ["1"]
    expected_length = [] if status in (204, 304) else [str(len(body))]
    assert got.get("Content-Length") == expected_length
    assert got.body == direct.body == (b"" if method == "HEAD" else body)
