"""WebSocket relay: the upgrade is authenticated like any request, then frames flow both ways."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import UpstreamUnreachable

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
    connection = request.headers.get("Connection", "")
    return upgrade.lower() == "websocket" and "upgrade" in connection.lower()


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
        code = source.close_code or aiohttp.WSCloseCode.OK
        await sink.close(code=code)


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
    try:
        await downstream.prepare(request)
        to_upstream = asyncio.create_task(_pump(downstream, upstream))
        to_client = asyncio.create_task(_pump(upstream, downstream))
        done, pending = await asyncio.wait(
            {to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(task, timeout)
        for task in done | pending:
            if not task.done():
                task.cancel()
    finally:
        await upstream.close()
        if not downstream.closed:
            await downstream.close()
    return downstream
