"""Host canonicalisation (Authelia CVE-2026-48794, Tinyauth GHSA-328g-jx67-v94g): every spelling
of an application's host (case, a trailing dot, a port) is that application, for routing, its
rules and its sign-in redirects, in proxy mode (Host) and in forward auth (X-Forwarded-Host).
A spelling that is not a host name at all is refused, never handed to another application."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp.test_utils import TestServer

from tests.proxy.helpers import BYPASS_POLICIES
from tests.security.conftest import Client, forward_auth_app, reached, send
from tests.support import portal_app

RULES = (
    "applications:\n"
    "  strict:\n"
    "    - paths: ['/internal/**']\n      access: deny\n"
    "  open:\n"
    "    - paths: ['/**']\n      access: bypass\n"
)
FRONT_RULES = "applications:\n  strict:\n    - paths: ['/internal/**']\n      access: deny\n"
SPELLINGS = [
    "legacy.example",
    "LEGACY.EXAMPLE",
    "Legacy.Example",
    "legacy.example.",
    "LEGACY.EXAMPLE.",
    "legacy.example:8080",
    "legacy.example.:8080",
    "LEGACY.example.:443",
    "legacy.example\t",  # optional white space around a header value is not part of it
]
NOT_HOSTS = [
    "legacy.example..",
    "legacy..example",
    "légacy.example".encode().decode("latin-1"),
    "legacy.example:99999",
    "[::1",
    "legacy.example:80:80",
    "legacy.example@open.example",
    "legacy.example/x",
    "legacy.example, open.example",
]


@pytest.fixture
async def proxied(make_gateway: Any, upstream_url: str, users_file: Path) -> Client:
    """`strict` on legacy.example (deny /internal/**, two factors elsewhere); `open`, which lets
    everything through, on every other host."""
    client: Client = await make_gateway(
        {
            "strict": portal_app(upstream_url, users_file, hosts=["legacy.example"]),
            "open": portal_app(upstream_url, users_file),
        },
        {"example.yaml": BYPASS_POLICIES["example.yaml"], "applications.yaml": RULES},
    )
    return client


@pytest.mark.parametrize("host", SPELLINGS)
async def test_every_spelling_of_the_host_is_its_application(
    proxied: Client, upstream: TestServer, host: str
) -> None:
    denied = await send(proxied, "/internal/x", [("Host", host)])
    assert denied.status == 403
    asked = await send(proxied, "/reports", [("Host", host)])
    assert asked.status == 303 and asked.get("Location")[0].startswith("/.gateway/login?")
    assert reached(upstream) == []
    # the other application's bypass is what another host gets
    assert (await send(proxied, "/internal/x", [("Host", "open.example")])).status == 200


@pytest.mark.parametrize("host", NOT_HOSTS)
async def test_what_is_not_one_host_name_goes_nowhere_open(
    proxied: Client, upstream: TestServer, host: str
) -> None:
    answer = await send(proxied, "/internal/x", [("Host", host)])
    assert answer.status == 400, answer.status
    assert reached(upstream) == []


@pytest.fixture
async def front(make_gateway: Any, users_file: Path) -> Client:
    """Forward auth for `strict` on legacy.example; the test client is the trusted front proxy."""
    app = forward_auth_app(users_file) | {"hosts": ["legacy.example"]}
    client: Client = await make_gateway(
        {"strict": app},
        {"example.yaml": BYPASS_POLICIES["example.yaml"], "applications.yaml": FRONT_RULES},
        trusted_proxies=["127.0.0.1/32"],
    )
    return client


async def verdict(client: Client, host: str, uri: str) -> Any:
    headers = [("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", uri), ("X-Forwarded-Host", host)]
    return await send(client, "/.gateway/verify", headers)


@pytest.mark.parametrize("host", SPELLINGS)
async def test_forward_auth_reads_every_spelling_of_the_forwarded_host(
    front: Client, host: str
) -> None:
    assert (await verdict(front, host, "/internal/x")).status == 403
    asked = await verdict(front, host, "/reports")
    assert asked.status == 303
    back = parse_qs(urlsplit(asked.get("Location")[0]).query)["rd"][0]
    assert back == "/reports"  # a path on the application's host, whatever its spelling


@pytest.mark.parametrize("host", [*NOT_HOSTS, "other.example", "xn--lgacy-bsa.example"])
async def test_forward_auth_refuses_hosts_that_are_not_its_application(
    front: Client, host: str
) -> None:
    answer = await verdict(front, host, "/internal/x")
    assert answer.status in (400, 421), (host, answer.status)


async def test_no_host_at_all_is_the_catch_all_application(
    proxied: Client, upstream: TestServer
) -> None:
    """An HTTP/1.0 request without a Host (an old client, a bare health check) names no host:
    the `*` application answers; it is not refused like a malformed one."""
    reader, writer = await asyncio.open_connection(proxied.server.host, proxied.server.port)
    try:
        writer.write(b"GET /internal/x HTTP/1.0\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.0 200 "), answer[:200]


async def test_an_empty_host_is_refused(proxied: Client) -> None:
    """An HTTP/1.1 request's empty Host is no host name (an http address always has one,
    RFC 9112 3.2): refused at the edge, not given to the `*` application."""
    answer = await send(proxied, "/internal/x", [("Host", "")])
    assert answer.status == 400
