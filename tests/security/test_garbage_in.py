"""Fail closed on garbage (issue 15; authentik CVE-2026-25748 and CVE-2024-47070): the gateway's
own cookies truncated, badly encoded, wrongly signed, oversized or repeated, and forwarded
addresses that do not parse, sent to proxy mode and to both forward-auth endpoints: never a
200 (nothing is let through), never a 500."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.security.conftest import SSO_HEADER

COOKIE_NAMES = ["gateway_session", "__Host-gateway_session", "gateway_trust", "gateway_browser"]
VALUES = [
    "",
    "x",
    "A" * 4000,
    "%ff%fe%00",
    "%01%7f",
    '"quoted"',
    "eyJ1c2VyIjoiYWxpY2UifQ.AAAA.BBBB",  # a signed-looking value, wrongly signed
    "alice@example.com|acme|10.0.0.0/8|9999999999",
]
FORWARDED = ["a", "1.2.3.4, a", "fe80::1%eth0", "999.1.1.1", ", ,", "[::1]:80", "1.2.3.4:99999"]


def cookie_headers() -> list[str]:
    found = [f"{name}={value}" for name, value in itertools.product(COOKIE_NAMES, VALUES)]
    found.append("gateway_session=a; gateway_session=b")  # repeated
    found.append("gateway_session=a, gateway_session=b")
    return found


@pytest.mark.parametrize("cookie", cookie_headers())
async def test_proxy_mode_never_lets_garbage_cookies_through(portal: Any, cookie: str) -> None:
    answer = await portal.get("/private", headers={"Cookie": cookie}, allow_redirects=False)
    assert answer.status != 200 and answer.status < 500, (cookie[:40], answer.status)


@pytest.mark.parametrize("forwarded", FORWARDED)
async def test_unparsable_forwarded_addresses_never_pass_or_fail(
    header: Any, forwarded: str
) -> None:
    """From the trusted proxy, with a user named and garbage X-Forwarded-For: no 500; the
    address counts as no trusted network (the challenge, not the application)."""
    answer = await header.get(
        "/private",
        headers={SSO_HEADER: "alice@example.com", "X-Forwarded-For": forwarded},
        allow_redirects=False,
    )
    assert answer.status != 200 and answer.status < 500, (forwarded, answer.status)


@pytest.mark.parametrize("endpoint", ["/.gateway/verify", "/.gateway/auth-request"])
@pytest.mark.parametrize(
    ("cookie", "forwarded"),
    [
        *((cookie, "10.1.2.3") for cookie in cookie_headers()[:: len(VALUES) // 2 or 1]),
        *(("gateway_session=x", forwarded) for forwarded in FORWARDED),
    ],
)
async def test_forward_auth_never_lets_garbage_through(
    forward_auth: Any, endpoint: str, cookie: str, forwarded: str
) -> None:
    answer = await forward_auth.get(
        endpoint,
        headers={
            "Cookie": cookie,
            "X-Forwarded-For": forwarded,
            "X-Forwarded-Method": "GET",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "app.test",
            "X-Forwarded-Uri": "/private",
            "X-Original-URL": "https://app.test/private",
            "X-Original-Method": "GET",
        },
        allow_redirects=False,
    )
    assert answer.status != 200 and answer.status < 500, (cookie[:40], forwarded, answer.status)
