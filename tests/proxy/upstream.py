"""A small upstream application for the proxy tests: it echoes, streams, counts and records."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from collections.abc import Iterator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

# Every request the upstream received, in order: what the tests check "never reached upstream" on.
SEEN = web.AppKey("seen", list[dict[str, Any]])
# Close codes the upstream's WebSocket handler saw, one per finished connection.
WS_CLOSES = web.AppKey("ws_closes", list[int | None])
_OPEN_WS = web.AppKey("open_ws", list[web.WebSocketResponse])

CHUNK = 1 << 20
_BLOCK = hashlib.shake_256(b"gateway proxy test pattern").digest(CHUNK)
GZIP_PLAIN = b"the same bytes, compressed once by the application\n" * 200
GZIP_BODY = gzip.compress(GZIP_PLAIN, mtime=0)
WS_PROTOCOLS = ("superchat", "chat")


def pattern(size: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """`size` deterministic bytes in chunks; every chunk differs, none is kept after it is yielded."""
    index = 0
    sent = 0
    while sent < size:
        length = min(chunk, size - sent)
        piece = index.to_bytes(8, "big") + _BLOCK[8:length]
        yield piece[:length]
        sent += length
        index += 1


def pattern_digest(size: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern(size):
        digest.update(piece)
    return digest.hexdigest()


def _record(request: web.Request, **extra: Any) -> dict[str, Any]:
    entry = {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": request.rel_url.raw_query_string,
        # Exact spellings and duplicates, as they came off the wire.
        "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
        **extra,
    }
    request.app[SEEN].append(entry)
    return entry


async def echo(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    length = 0
    async for piece in request.content.iter_any():
        digest.update(piece)
        length += len(piece)
    entry = _record(request, body_length=length, body_sha256=digest.hexdigest())
    return web.json_response(entry)


async def download(request: web.Request) -> web.StreamResponse:
    _record(request)
    size = int(request.query["size"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if request.query.get("chunked") == "1":
        response.enable_chunked_encoding()
    else:
        response.content_length = size
    await response.prepare(request)
    for piece in pattern(size):
        await response.write(piece)
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.Response:
    entry = _record(request)
    digest = hashlib.sha256()
    length = 0
    async for piece in request.content.iter_any():
        digest.update(piece)
        length += len(piece)
    return web.json_response(
        {"length": length, "sha256": digest.hexdigest(), "headers": entry["headers"]}
    )


async def gzipped(request: web.Request) -> web.Response:
    _record(request)
    return web.Response(
        body=GZIP_BODY,
        headers={
            "Content-Encoding": "gzip",
            "Content-Type": "text/plain",
            "Vary": "Accept-Encoding",
        },
    )


async def redirect(request: web.Request) -> web.Response:
    _record(request)
    return web.Response(status=302, headers={"Location": request.query["to"]})


async def slow(request: web.Request) -> web.Response:
    _record(request)
    await asyncio.sleep(float(request.query.get("delay", "2")))
    return web.Response(text="finally")


async def stall(request: web.Request) -> web.StreamResponse:
    """Headers and a first piece at once, then nothing for `delay` seconds."""
    _record(request)
    response = web.StreamResponse()
    response.content_length = 2 * 1024
    await response.prepare(request)
    await response.write(b"x" * 1024)
    await asyncio.sleep(float(request.query.get("delay", "2")))
    await response.write(b"y" * 1024)
    return response


async def hop(request: web.Request) -> web.Response:
    _record(request)
    return web.Response(
        text="hop",
        headers={
            "Connection": "X-Internal",
            "X-Internal": "upstream secret",
            "Keep-Alive": "timeout=5",
            "Proxy-Authenticate": 'Basic realm="inner"',
            "Trailer": "X-Checksum",
            "X-Kept": "yes",
        },
    )


async def websocket(request: web.Request) -> web.WebSocketResponse:
    entry = _record(request)
    ws = web.WebSocketResponse(protocols=WS_PROTOCOLS)
    await ws.prepare(request)
    request.app[_OPEN_WS].append(ws)
    await ws.send_json({"protocol": ws.ws_protocol, "headers": entry["headers"]})
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            if message.data.startswith("close:"):
                await ws.close(code=int(message.data.split(":", 1)[1]), message=b"bye")
                break
            await ws.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    request.app[WS_CLOSES].append(ws.close_code)
    request.app[_OPEN_WS].remove(ws)
    return ws


async def _close_websockets(app: web.Application) -> None:
    """A test that failed half way leaves sockets open; shutting down must not wait on them."""
    for ws in app[_OPEN_WS].copy():
        await ws.close(code=WSCloseCode.GOING_AWAY)


def create_upstream() -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app[SEEN] = []
    app[WS_CLOSES] = []
    app[_OPEN_WS] = []
    app.on_shutdown.append(_close_websockets)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/slow", slow)
    app.router.add_get("/stall", stall)
    app.router.add_get("/hop", hop)
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app
