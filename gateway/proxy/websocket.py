"""WebSocket relay: the upgrade is authenticated like any request, then frames flow both ways."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import BadRequest, UpstreamUnreachable

# The handshake headers are the relay's own business on each side.
_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
MAX_MESSAGE = 16 * 1024 * 1024


def is_websocket(request: web.Request) -> bool:
    upgrade = request.headers.get("Upgrade", "")
    connection = {
        token.strip().lower()
        for value in request.headers.getall("Connection", [])
        for token in value.split(",")
    }
    return upgrade.strip().lower() == "websocket" and "upgrade" in connection


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    async for message in source:
        if message.type is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type is WSMsgType.ERROR:
            break
    if not sink.closed:
        await sink.close(code=_relayable(source.close_code))


# Codes that only report a closure (RFC 6455 section 7.4.1) and must not be sent in a close frame.
_REPORT_ONLY = frozenset({1004, 1005, 1006, 1015})


def _relayable(code: int | None) -> int:
    """The close code to pass on to the other side: the same one when it may be sent."""
    if code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
        return aiohttp.WSCloseCode.GOING_AWAY
    if code is None or code in _REPORT_ONLY or not 1000 <= code < 5000:
        return aiohttp.WSCloseCode.OK
    return code


async def relay_websocket(
    request: web.Request,
    client: aiohttp.ClientSession,
    url: URL,
    headers: CIMultiDict[str],
    timeout: float,
) -> web.WebSocketResponse:
    forward = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HANDSHAKE)
    offered = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    if not web.WebSocketResponse(protocols=offered).can_prepare(request).ok:
        # Checked before the upstream is dialled: a handshake that cannot be completed with the
        # client must not open one with the application.
        raise BadRequest(
            "This WebSocket request is malformed, so it was not passed on.",
            "Reload the page. If it keeps happening, tell the people who run this site.",
        )
    try:
        upstream = await client.ws_connect(
            url,
            headers=forward,
            protocols=offered,
            autoping=True,
            max_msg_size=MAX_MESSAGE,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeout),
        )
    except aiohttp.WSServerHandshakeError as exc:
        raise UpstreamUnreachable(str(url.origin()), f"WebSocket refused: {exc.status}") from exc
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise UpstreamUnreachable(str(url.origin()), str(exc)) from exc
    downstream = web.WebSocketResponse(
        protocols=[upstream.protocol] if upstream.protocol else (),
        autoping=True,
        max_msg_size=MAX_MESSAGE,
    )
    pumps: list[asyncio.Task[None]] = []
    try:
        await downstream.prepare(request)
        pumps = [
            asyncio.create_task(_pump(downstream, upstream)),
            asyncio.create_task(_pump(upstream, downstream)),
        ]
        _done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(task, timeout)
    finally:
        # Also reached when this handler is cancelled because the client's connection ended,
        # possibly while a pump is half way through closing: the pumps must not outlive the
        # relay, and the upstream still gets the close code the client sent.
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await upstream.close(code=_relayable(downstream.close_code))
        if downstream.prepared and not downstream.closed:
            await downstream.close()
    return downstream
