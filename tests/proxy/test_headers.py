"""Header hygiene at the proxy boundary: what the client sends is cleaned before the upstream
sees it, and the gateway's own forwarding and identity headers cannot be spoofed or dropped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.clock import FixedClock
from tests.proxy.helpers import (
    BYPASS_POLICIES,
    USER,
    bypass_app,
    cookie_header,
    portal_verified,
    raw_request,
    write_users_file,
)
from tests.proxy.upstream import SEEN
from tests.support import portal_app

SPOOFED = [
    ("Remote-User", "mallory"),
    ("remote_user", "mallory"),
    ("REMOTE-EMAIL", "mallory@evil.example"),
    ("Remote_Email", "mallory@evil.example"),
    ("Remote-Groups", "admins"),
    ("remote-name", "Mallory"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("x_forwarded_for", "6.6.6.6"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "444"),
    ("Forwarded", "for=6.6.6.6;host=evil.example;proto=https"),
    ("X-Real-IP", "6.6.6.6"),
    ("X-Client-IP", "6.6.6.6"),
    ("True-Client-IP", "6.6.6.6"),
    ("X-Original-URL", "/admin"),
    ("X-Rewrite-URL", "/admin"),
]
SPOOFED_VALUES = {value for _, value in SPOOFED}


def _upstream_headers(upstream: TestServer) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = upstream.app[SEEN][-1]["headers"]
    return headers


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


@pytest.fixture
async def gateway(make_gateway: Any, upstream_url: str) -> Any:
    return await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)


async def _send(gateway: Any, headers: list[tuple[str, str]], target: str = "/echo") -> Any:
    response = await raw_request(gateway.server.host, gateway.server.port, target, headers)
    assert response.status == 200, response.body
    return response


async def test_connection_listed_headers_are_removed(gateway: Any, upstream: TestServer) -> None:
    """Headers named in Connection (any case, any number of Connection headers) do not reach upstream."""
    await _send(
        gateway,
        [
            ("Connection", "close, X-Secret"),
            ("Connection", "x-other ,  X-Third"),
            ("X-Secret", "s1"),
            ("X-Other", "s2"),
            ("x-third", "s3"),
            ("X-Kept", "kept"),
        ],
    )
    seen = _upstream_headers(upstream)
    names = {k.lower() for k, _ in seen}
    assert not names & {"x-secret", "x-other", "x-third", "connection"}
    assert _values(seen, "X-Kept") == ["kept"]


async def test_hop_by_hop_headers_are_removed(gateway: Any, upstream: TestServer) -> None:
    """Keep-Alive, TE, Trailer, Proxy-Authorization, Proxy-Connection and HTTP2-Settings are not
    forwarded. (An Upgrade to anything but WebSocket, h2c say, is refused at the edge before
    any of this: tests/security/test_protocol.py.)"""
    await _send(
        gateway,
        [
            ("Connection", "close"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("TE", "trailers, deflate"),
            ("Trailer", "X-Checksum"),
            ("Proxy-Authorization", "Basic bWFsbG9yeTpzZWNyZXQ="),
            ("Proxy-Connection", "keep-alive"),
            ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
            ("Authorization", "Bearer app-token"),
        ],
    )
    seen = _upstream_headers(upstream)
    names = {k.lower() for k, _ in seen}
    for name in (
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "http2-settings",
    ):
        assert name not in names, name
    assert _values(seen, "Authorization") == ["Bearer app-token"]  # end to end: kept


async def test_spoofed_identity_and_forwarding_headers_never_reach_upstream(
    gateway: Any, upstream: TestServer
) -> None:
    """Client-sent Remote-*, X-Forwarded-*, Forwarded, X-Real-IP (any case, `_` for `-`) are replaced or dropped."""
    await _send(gateway, [("Connection", "close"), *SPOOFED])
    seen = _upstream_headers(upstream)
    for name, value in seen:
        assert value not in SPOOFED_VALUES, (name, value)
        assert "_" not in name, name
    names = {k.lower() for k, _ in seen}
    for name in ("remote-user", "remote-email", "remote-groups", "remote-name", "forwarded"):
        assert name not in names, name
    assert _values(seen, "X-Forwarded-For") == ["127.0.0.1"]  # the socket peer, untrusted
    assert _values(seen, "X-Forwarded-Proto") == ["http"]
    assert _values(seen, "X-Forwarded-Host") == [f"{gateway.server.host}:{gateway.server.port}"]


@pytest.mark.parametrize(
    "listed",
    [
        "X-Forwarded-For",
        "x-forwarded-for, X-Forwarded-Host, X-Forwarded-Proto",
        "close, X-Forwarded-For",
        "X-Request-Id, Host",
    ],
)
async def test_connection_cannot_drop_the_gateways_own_headers(
    gateway: Any, upstream: TestServer, listed: str
) -> None:
    """Naming X-Forwarded-* in Connection does not make the gateway drop its own values (CVE-2024-45410)."""
    await _send(gateway, [("Connection", listed), ("X-Forwarded-For", "6.6.6.6")])
    seen = _upstream_headers(upstream)
    assert _values(seen, "X-Forwarded-For") == ["127.0.0.1"]
    assert _values(seen, "X-Forwarded-Proto") == ["http"]
    assert _values(seen, "X-Forwarded-Host") == [f"{gateway.server.host}:{gateway.server.port}"]
    assert len(_values(seen, "X-Request-Id")) == 1
    assert len(_values(seen, "Host")) == 1


@pytest.mark.parametrize("spelling", ["X-Request-Id", "X_Request_Id", "x.request.id"])
async def test_the_request_id_is_the_gateways_alone(
    gateway: Any, upstream: TestServer, spelling: str
) -> None:
    """A client's X-Request-Id, under any spelling an application reads as it (PHP: "_", "."
    and "-" alike), never reaches the upstream beside the gateway's own."""
    await _send(gateway, [(spelling, "forged-id")])
    seen = _upstream_headers(upstream)
    assert not [value for _, value in seen if value == "forged-id"], seen
    assert len(_values(seen, "X-Request-Id")) == 1


async def test_forwarded_for_from_a_trusted_proxy(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """Behind a trusted proxy the forwarded address is the client it names, not an address the client made up."""
    client = await make_gateway(
        {"app": bypass_app(upstream_url)}, BYPASS_POLICIES, trusted_proxies=["127.0.0.1/32"]
    )
    await _send(client, [("Connection", "close"), ("X-Forwarded-For", "6.6.6.6, 203.0.113.9")])
    seen = _upstream_headers(upstream)
    forwarded = ",".join(_values(seen, "X-Forwarded-For"))
    hops = [hop.strip() for hop in forwarded.split(",")]
    assert hops[-1] == "203.0.113.9"


async def test_no_header_is_added_but_the_gateways_own(gateway: Any, upstream: TestServer) -> None:
    """The upstream gets the client's end-to-end headers and the gateway's X-Forwarded-*/X-Request-Id, nothing more."""
    await _send(gateway, [("Connection", "close"), ("X-Only", "1")])
    names = sorted(k.lower() for k, _ in _upstream_headers(upstream))
    assert names == sorted(
        [
            "host",
            "x-only",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-request-id",
        ]
    )


async def test_response_hop_by_hop_headers_are_removed(gateway: Any) -> None:
    """The upstream's hop-by-hop and Connection-listed response headers do not reach the client."""
    response = await _send(gateway, [("Connection", "close")], target="/hop")
    names = {k.lower() for k, _ in response.headers}
    for name in ("x-internal", "keep-alive", "proxy-authenticate", "trailer"):
        assert name not in names, name
    assert response.get("X-Kept") == ["yes"]
    assert response.body == b"hop"


async def test_portal_identity_headers_come_from_the_session_only(
    make_gateway: Any, upstream: TestServer, upstream_url: str, users_file: Path
) -> None:
    """With a verified portal session the upstream gets Remote-* from the session and none of the client's spellings."""
    clock = FixedClock(time.time())
    client = await make_gateway({"app": portal_app(upstream_url, users_file)}, clock=clock)
    await portal_verified(client, clock)
    await _send(
        client,
        [("Connection", "close"), ("Cookie", cookie_header(client)), *SPOOFED],
        target="/reports",
    )
    seen = _upstream_headers(upstream)
    for name, value in seen:
        assert value not in SPOOFED_VALUES, (name, value)
    assert _values(seen, "Remote-User") == [USER]
    assert _values(seen, "Remote-Email") == [USER]
    assert _values(seen, "Remote-Name") == ["Carol Example"]
    assert _values(seen, "Remote-Groups") == ["billing"]
    assert _values(seen, "X-Forwarded-For") == ["127.0.0.1"]


async def test_header_mode_user_header_is_not_forwarded_as_sent(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """Header mode: the SSO's user header is consumed by the gateway; the upstream sees only the gateway's Remote-User."""
    client = await make_gateway(
        {
            "app": {
                "upstream": upstream_url,
                "hosts": ["*"],
                "identity": "header",
                "header": {"user_header": "X-SSO-User"},
            }
        },
        BYPASS_POLICIES,
        trusted_proxies=["127.0.0.1/32"],
    )
    await _send(
        client,
        [("Connection", "close"), ("X-SSO-User", "dave@example.com"), ("x_sso_user", "mallory")],
    )
    seen = _upstream_headers(upstream)
    names = {k.lower() for k, _ in seen}
    assert "x-sso-user" not in names and "x_sso_user" not in names
    assert "remote-user" not in names  # a bypass route forwards no identity


async def test_an_identity_value_a_header_cannot_carry_is_left_out(
    make_gateway: Any, upstream: TestServer, upstream_url: str, tmp_path: Path
) -> None:
    """A display name or group from an identity source (here a users file; a directory's or an
    OpenID provider's alike) with a control character never reaches the application as a header,
    and the request is still passed on (no 500)."""
    users = write_users_file(tmp_path)
    text = users.read_text().replace("Carol Example", '"Carol\\x07Example"')
    users.write_text(text.replace("[billing]", '["bill\\x1bing"]'))
    clock = FixedClock(time.time())
    client = await make_gateway({"app": portal_app(upstream_url, users)}, clock=clock)
    await portal_verified(client, clock)
    await _send(client, [("Connection", "close"), ("Cookie", cookie_header(client))], "/reports")
    seen = _upstream_headers(upstream)
    assert _values(seen, "Remote-User") == [USER]
    assert _values(seen, "Remote-Name") == []
    assert _values(seen, "Remote-Groups") == []
