"""Open redirects: every Location the gateway sends keeps the browser on this site."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from gateway.clock import FixedClock
from tests.proxy.helpers import (
    BYPASS_POLICIES,
    PASSWORD,
    USER,
    bypass_app,
    portal_enrol,
    portal_first_factor,
    raw_request,
)
from tests.proxy.upstream import SEEN
from tests.support import code_for, csrf_from_page, portal_app

# Values of `rd` exactly as they appear in the query string (so some are percent-encoded once).
PAYLOADS = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "%2f%2fevil.example",
    "/%2f%2fevil.example",
    "%2F%5Cevil.example",
    "/%252f%252fevil.example",
    "%252f%252fevil.example",
    "https://evil.example",
    "https:%2F%2Fevil.example",
    "HTTPS://evil.example",
    "http:evil.example",
    "/%09evil",
    "/%09/evil.example",
    "%20//evil.example",
    "/%0d%0aSet-Cookie:x=1",
    "%0d%0aSet-Cookie:x=1",
    "/%250d%250aSet-Cookie:x=1",
    "javascript:alert(1)",
    "javascript%3Aalert(1)",
    "//evil.example/%2e%2e",
    "/evil%00.example",
]


def assert_stays_on_site(location: str) -> None:
    """A relative path with a single leading "/", whatever the decoding, and no header tricks."""
    assert all(0x21 <= ord(c) <= 0x7E for c in location), repr(location)
    target = location
    for _ in range(3):
        assert target.startswith("/"), repr(location)
        assert not target.startswith(("//", "/\\")), repr(location)
        parts = urlsplit(target)
        assert not parts.scheme and not parts.netloc, repr(location)
        target = unquote(target)
    for rd in parse_qs(urlsplit(location).query).get("rd", []):
        assert_stays_on_site(rd)


def assert_payload_gone(response: Any) -> None:
    """The redirect says nothing of the attacker's target and sets no injected cookie."""
    location = response.headers["Location"]
    assert_stays_on_site(location)
    decoded = unquote(unquote(unquote(location))).lower()
    assert "evil" not in decoded and "javascript" not in decoded and "cookie" not in decoded
    for line in response.headers.getall("Set-Cookie", []):
        assert not line.startswith("x="), line


async def _request(client: Any, method: str, target: str, **kwargs: Any) -> Any:
    return await client.request(method, URL(target, encoded=True), allow_redirects=False, **kwargs)


@pytest.fixture
async def portal(make_gateway: Any, upstream_url: str, users_file: Path) -> tuple[Any, FixedClock]:
    clock = FixedClock(time.time())
    client = await make_gateway({"app": portal_app(upstream_url, users_file)}, clock=clock)
    return client, clock


async def test_rd_cannot_leave_the_site_on_any_gateway_page(
    portal: tuple[Any, FixedClock], upstream: TestServer
) -> None:
    """`rd` on challenge, enrol, login and logout never yields a Location off this site, signed in or not."""
    client, clock = portal

    # Anonymous: challenge and enrol send to the login page, which carries rd in its form.
    for payload in PAYLOADS:
        for page in ("challenge", "enrol"):
            response = await _request(client, "GET", f"/.gateway/{page}?rd={payload}")
            assert response.status == 303, (page, payload)
            assert_payload_gone(response)
        login = await _request(client, "GET", f"/.gateway/login?rd={payload}")
        assert login.status == 200
        html = await login.text()
        (action,) = re.findall(r'<form method="post" action="([^"]*)"', html)
        assert_stays_on_site(action)
        assert parse_qs(urlsplit(action).query)["rd"] == ["/"], payload
        assert "evil" not in html

    # The password, posted with each payload: the way on to enrolment stays on the site.
    for payload in PAYLOADS:
        token = csrf_from_page(await (await client.get("/.gateway/login")).text())
        response = await _request(
            client,
            "POST",
            f"/.gateway/login?rd={payload}",
            data={"csrf_token": token, "username": USER, "password": PASSWORD},
        )
        assert response.status == 303, payload
        assert response.headers["Location"] == "/.gateway/enrol?rd=%2F"
        assert_payload_gone(response)
        pending = await _request(client, "GET", f"/.gateway/challenge?rd={payload}")
        assert pending.status == 303
        assert_payload_gone(pending)

    # Enrolment completed with a payload: the verified session is sent home.
    done, secret = await portal_enrol(client, clock, target=f"/.gateway/enrol?rd={PAYLOADS[0]}")
    assert done.status == 303
    assert done.headers["Location"] == "/"
    assert_payload_gone(done)

    # Verified: every page sends straight to rd, which must have been replaced.
    for payload in PAYLOADS:
        for page in ("challenge", "enrol", "login"):
            response = await _request(client, "GET", f"/.gateway/{page}?rd={payload}")
            assert response.status == 303, (page, payload)
            assert response.headers["Location"] == "/"
            assert_payload_gone(response)

    # The challenge completed with each payload (the clock moves on: each code is used once).
    token = csrf_from_page(await (await client.get("/.gateway/logout")).text())
    for payload in PAYLOADS:
        first = await _request(
            client,
            "POST",
            "/.gateway/login",
            data={"csrf_token": token, "username": USER, "password": PASSWORD},
        )
        assert first.headers["Location"] == "/.gateway/challenge?rd=%2F"
        page = await client.get("/.gateway/challenge")
        clock.advance(30)
        response = await _request(
            client,
            "POST",
            f"/.gateway/challenge?rd={payload}",
            data={
                "csrf_token": csrf_from_page(await page.text()),
                "code": code_for(secret, at=clock.now),
            },
        )
        assert response.status == 303, payload
        assert response.headers["Location"] == "/"
        assert_payload_gone(response)

    # Logout (POST with the CSRF token of the signed-in logout page), signed in and then not.
    token = csrf_from_page(await (await client.get("/.gateway/logout")).text())
    for payload in PAYLOADS:
        response = await _request(
            client, "POST", f"/.gateway/logout?rd={payload}", data={"csrf_token": token}
        )
        assert response.status == 303, payload
        assert response.headers["Location"] == "/"
        assert_payload_gone(response)
    assert upstream.app[SEEN] == []  # gateway pages only: nothing was forwarded


async def test_safe_rd_is_kept(portal: tuple[Any, FixedClock]) -> None:
    """A genuine path with a query survives the trip through login and enrolment (the check is not just "always /")."""
    client, clock = portal
    rd = quote("/reports/2024?x=1&y=%2F", safe="")
    first = await portal_first_factor(client, rd=rd)
    assert first.headers["Location"] == f"/.gateway/enrol?rd={rd}"
    done, _secret = await portal_enrol(client, clock, target=f"/.gateway/enrol?rd={rd}")
    assert done.headers["Location"] == "/reports/2024?x=1&y=%2F"
    assert_stays_on_site(done.headers["Location"])


@pytest.mark.parametrize(
    ("target", "rd"),
    [
        ("//evil.example/x", "/evil.example/x"),
        ("/./evil.example", "/evil.example"),
        ("/a/..//evil.example/", "/evil.example/"),
        ("/x?next=//evil.example", "/x?next=//evil.example"),
    ],
)
async def test_protected_path_return_address_stays_on_site(
    portal: tuple[Any, FixedClock], target: str, rd: str
) -> None:
    """The return address made from a protected request's own path is a single-slash path on this site."""
    client, _clock = portal
    response = await raw_request(
        client.server.host, client.server.port, target, [("Connection", "close")]
    )
    assert response.status == 303
    (location,) = response.get("Location")
    assert location.startswith("/.gateway/login?rd=")
    assert_stays_on_site(location)
    assert parse_qs(urlsplit(location).query)["rd"] == [rd]


async def test_upstream_absolute_location_is_made_relative(
    make_gateway: Any, upstream: TestServer, upstream_url: str
) -> None:
    """The upstream's redirect to its own origin becomes a path on this site; other origins are left as they are."""
    client = await make_gateway({"app": bypass_app(upstream_url)}, BYPASS_POLICIES)
    other_port = (upstream.port or 0) + 1

    async def location_for(to: str) -> str:
        response = await client.get(f"/redirect?to={quote(to, safe='')}", allow_redirects=False)
        assert response.status == 302
        return str(response.headers["Location"])

    assert await location_for(f"{upstream_url}/landing?x=1") == "/landing?x=1"
    assert await location_for(f"{upstream_url}/landing#part") == "/landing#part"
    assert await location_for(upstream_url) == "/"
    assert await location_for("https://other.example/x") == "https://other.example/x"
    assert (
        await location_for(f"http://127.0.0.1:{other_port}/x") == f"http://127.0.0.1:{other_port}/x"
    )
    assert await location_for("/already/relative") == "/already/relative"
    # The upstream's own origin with a path that a browser would read as another host.
    for sneaky in ("//evil.example/x", "/.//evil.example", "///evil.example", "/\\evil.example"):
        location = await location_for(f"{upstream_url}{sneaky}")
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location
        assert "evil.example" in location  # still the same page, only its path
