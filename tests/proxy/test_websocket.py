"""WebSocket relay: frames both ways, subprotocol and close code carried, sign-in enforced first."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from gateway.clock import FixedClock
from tests.proxy.helpers import (
    BYPASS_POLICIES,
    USER,
    bypass_app,
    cookie_header,
    portal_enrol,
    portal_first_factor,
    raw_request,
)
from tests.proxy.upstream import SEEN, WS_CLOSES
from tests.support import portal_app


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


async def _wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_websocket_echo_through_the_gateway(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """Text and binary frames go both ways, the subprotocol is negotiated, and the upstream's close code reaches the client."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    ws = await client.ws_connect(
        "/ws", protocols=("v9.unknown", "chat"), headers={"X-Forwarded-For": "6.6.6.6"}
    )
    assert ws.protocol == "chat"
    hello = await ws.receive_json(timeout=3)
    assert hello["protocol"] == "chat"
    seen = hello["headers"]
    assert _values(seen, "X-Forwarded-For") == ["127.0.0.1"]
    (offered,) = _values(seen, "Sec-WebSocket-Protocol")
    assert [p.strip() for p in offered.split(",")] == ["v9.unknown", "chat"]

    await ws.send_str("héllo")
    assert (await ws.receive(timeout=3)).data == "héllo"
    blob = bytes(range(256)) * 1000
    await ws.send_bytes(blob)
    message = await ws.receive(timeout=3)
    assert message.type is WSMsgType.BINARY and message.data == blob
    big = "x" * (2 * 1024 * 1024)
    await ws.send_str(big)
    assert (await ws.receive(timeout=5)).data == big

    await ws.send_str("close:4001")
    closing = await ws.receive(timeout=3)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
    await ws.close()
    assert ws.close_code == 4001


async def test_websocket_client_close_code_reaches_upstream(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """A close started by the client reaches the upstream with the client's close code."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    ws = await client.ws_connect("/ws")
    assert ws.protocol is None
    assert (await ws.receive_json(timeout=3))["protocol"] is None
    await ws.send_str("ping")
    assert (await ws.receive(timeout=3)).data == "ping"
    await ws.close(code=4002, message=b"done")
    await _wait_for(lambda: upstream.app[WS_CLOSES])
    assert upstream.app[WS_CLOSES] == [4002]


HANDSHAKE = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Protocol", "chat"),
    ("Remote-User", "mallory"),
]


@pytest.mark.parametrize("path", ["/ws", "/other/../ws"])
async def test_websocket_needs_sign_in_first(
    make_gateway: Any, upstream: TestServer, upstream_url: str, users_file: Path, path: str
) -> None:
    """In portal mode an upgrade without a verified session is sent to sign in and never relayed; once verified it is, with identity."""
    clock = FixedClock(time.time())
    client = await make_gateway({"app": portal_app(upstream_url, users_file)}, clock=clock)
    host, port = client.server.host, client.server.port
    anonymous = await raw_request(host, port, path, HANDSHAKE)
    assert anonymous.status == 303
    assert anonymous.get("Location") == ["/.gateway/login?rd=%2Fws"]
    assert not anonymous.get("Upgrade")

    first = await portal_first_factor(client)
    assert first.status == 303
    pending = await raw_request(host, port, path, [*HANDSHAKE, ("Cookie", cookie_header(client))])
    assert pending.status == 303
    assert pending.get("Location") == ["/.gateway/enrol?rd=%2Fws"]
    assert upstream.app[SEEN] == []

    done, _secret = await portal_enrol(client, clock)
    assert done.status == 303
    ws = await client.ws_connect(path, protocols=("chat",), headers={"Remote-User": "mallory"})
    assert ws.protocol == "chat"
    hello = await ws.receive_json(timeout=3)
    assert _values(hello["headers"], "Remote-User") == [USER]
    await ws.send_str("after sign-in")
    assert (await ws.receive(timeout=3)).data == "after sign-in"
    await ws.close()


async def test_client_vanishing_closes_the_upstream_socket(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """When the client's connection drops without a close frame, the upstream WebSocket is closed too."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    ws = await client.ws_connect("/ws")
    await ws.receive_json(timeout=3)
    await ws.send_str("ping")
    assert (await ws.receive(timeout=3)).data == "ping"
    connection = ws._response.connection
    assert connection is not None and connection.transport is not None
    connection.transport.abort()
    await _wait_for(lambda: upstream.app[WS_CLOSES])
    assert upstream.app[WS_CLOSES][0] in (1000, 1001)


@pytest.mark.parametrize(
    "handshake",
    [
        [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")],
        [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "99"),
        ],
        [
            ("Upgrade", "websocket"),
            ("Connection", "x-upgraded"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ],
    ],
)
async def test_malformed_upgrade_never_reaches_upstream(
    make_gateway: Any, upstream: TestServer, upstream_url: str, handshake: list[tuple[str, str]]
) -> None:
    """An upgrade the gateway cannot complete with the client is refused before any connection to the upstream."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    response = await raw_request(
        client.server.host, client.server.port, "/ws", [*handshake, ("Connection", "close")]
    )
    assert 400 <= response.status < 500
    assert all(
        entry["path"] != "/ws" or not _values(entry["headers"], "Upgrade")
        for entry in upstream.app[SEEN]
    )


async def test_upstream_refusing_the_upgrade_gives_502(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """An upstream that answers an upgrade with a plain page gives the client a clean 502 page."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    response = await raw_request(
        client.server.host,
        client.server.port,
        "/not-a-socket",
        [*HANDSHAKE, ("Connection", "close")],
    )
    assert response.status == 502
    assert b"The application is not answering" in response.body
    assert b"Traceback" not in response.body
