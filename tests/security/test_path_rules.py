"""Skip and deny rules against path tricks (oauth2-proxy CVE-2025-54576, Traefik CVE-2025-32431,
Authelia CVE-2021-32637): `..`, `%2e%2e`, `%2f`, `%5c`, `;`, `//`, `%00`, double encoding,
fullwidth characters and case, sent byte for byte, in proxy mode and to both forward-auth
endpoints. Whatever the gateway lets through must be what an application server, reading the
path loosely, routes to the same rule."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.security.conftest import SSO_HEADER, USER, Client, reached, send
from tests.security.corpus import (
    BYPASS_TRICKS,
    DENY_TRICKS,
    DENY_TRICKS_MATCHING,
    application_reading,
)
from tests.security.test_open_redirect import enrolled_header_user

VERIFY_ENDPOINTS = ("/.gateway/verify", "/.gateway/auth-request")


def public(raw_path: str) -> bool:
    read = application_reading(raw_path)
    return read == "/public" or read.startswith("/public/")


def internal(raw_path: str) -> bool:
    read = application_reading(raw_path)
    return read == "/internal" or read.startswith("/internal/")


async def verdict(client: Client, endpoint: str, uri: str, cookie: str = "") -> Any:
    headers = [
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Uri" if endpoint.endswith("verify") else "X-Original-URI", uri),
        ("X-Forwarded-Host", "app.test"),
    ]
    return await send(client, endpoint, headers + ([("Cookie", cookie)] if cookie else []))


async def test_bypass_rule_proxy_mode(portal: Client, upstream: TestServer) -> None:
    """Anonymous: a trick is refused (400), or sent to sign in, or forwarded under a path that
    the application too reads as /public/...; never a 500."""
    leaks = []
    for trick in BYPASS_TRICKS:
        before = len(reached(upstream))
        answer = await send(portal, trick)
        assert answer.status in (200, 303, 400, 404), (trick, answer.status)
        if answer.status == 303:
            assert answer.get("Location")[0].startswith("/.gateway/login?"), trick
        for entry in reached(upstream)[before:]:
            if not public(entry["raw_path"]):
                leaks.append(f"{trick!r} reached the upstream as {entry['raw_path']!r}")
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("endpoint", VERIFY_ENDPOINTS)
async def test_bypass_rule_forward_auth(forward_auth: Client, endpoint: str) -> None:
    """The front proxy forwards the raw URI: an allow for an anonymous browser only when the
    application reads that very URI as /public/..."""
    leaks = []
    for trick in BYPASS_TRICKS:
        answer = await verdict(forward_auth, endpoint, trick)
        assert answer.status in (200, 303, 400, 401), (trick, answer.status)
        if answer.status == 200 and not public(trick):
            leaks.append(f"{trick!r} allowed")
    assert not leaks, "\n".join(leaks)


async def test_deny_rule_proxy_mode(header: Client, upstream: TestServer) -> None:
    """Signed in and verified: no spelling of a denied path reaches the application."""
    await enrolled_header_user(header, USER)
    cookie = "; ".join(f"{m.key}={m.value}" for m in header.session.cookie_jar)
    assert (await send(header, "/light/x", [(SSO_HEADER, USER), ("Cookie", cookie)])).status == 200
    leaks = []
    for trick in DENY_TRICKS:
        before = len(reached(upstream))
        answer = await send(header, trick, [(SSO_HEADER, USER), ("Cookie", cookie)])
        assert answer.status in (200, 400, 403), (trick, answer.status)
        for entry in reached(upstream)[before:]:
            if internal(entry["raw_path"]):
                leaks.append(f"{trick!r} reached the upstream as {entry['raw_path']!r}")
    assert not leaks, "\n".join(leaks)


async def verified_forward_auth_cookie(forward_auth: Client) -> str:
    """A browser that signed in and enrolled through the gateway's pages on the app's host."""
    from tests.security.conftest import PASSWORD
    from tests.support import code_for, csrf_from_page, portal_login, secret_from_page

    host = {"Host": "app.test"}
    login = await portal_login(forward_auth, USER, PASSWORD, headers=host)
    assert login.status == 303, await login.text()
    html = await (await forward_auth.get(login.headers["Location"], headers=host)).text()
    done = await forward_auth.post(
        login.headers["Location"],
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        headers=host,
        allow_redirects=False,
    )
    assert done.status == 303
    return "; ".join(f"{m.key}={m.value}" for m in forward_auth.session.cookie_jar)


@pytest.mark.parametrize("endpoint", VERIFY_ENDPOINTS)
async def test_deny_rule_forward_auth(forward_auth: Client, endpoint: str) -> None:
    """Verified: no spelling of a denied path is allowed; a non-canonical one is sent to its
    plain form, which is then denied."""
    cookie = await verified_forward_auth_cookie(forward_auth)
    assert (await verdict(forward_auth, endpoint, "/light/x", cookie)).status == 200
    leaks = []
    for trick in DENY_TRICKS:
        answer = await verdict(forward_auth, endpoint, trick, cookie)
        assert answer.status in (303, 400, 401, 403), (trick, answer.status)
        if answer.status == 200 and internal(trick):
            leaks.append(f"{trick!r} allowed")
    assert not leaks, "\n".join(leaks)


async def test_deny_rule_path_parameters_and_case(header: Client, upstream: TestServer) -> None:
    """Tomcat, Jetty and Spring route /internal;x/y to /internal/y; IIS and many frameworks
    route /INTERNAL/y to /internal/y: a verified user must not reach a denied path either way."""
    await enrolled_header_user(header, USER)
    cookie = "; ".join(f"{m.key}={m.value}" for m in header.session.cookie_jar)
    for trick in DENY_TRICKS_MATCHING:
        answer = await send(header, trick, [(SSO_HEADER, USER), ("Cookie", cookie)])
        assert answer.status in (400, 403), trick
    assert reached(upstream) == []


async def test_double_encoding_is_refused(portal: Client, upstream: TestServer) -> None:
    """A path still encoding a dot, slash, backslash or NUL once decoded is refused: an
    application that decodes again would route "/public/%252e%252e/admin" to /admin, past the
    bypass rule the gateway matched."""
    for trick in ("/public/%252e%252e/admin", "/public/%252E%252E/admin", "/public/%252fadmin"):
        answer = await send(portal, trick)
        assert answer.status == 400, trick
    assert reached(upstream) == []


@pytest.mark.parametrize(
    "trick",
    [
        "/public/..;/admin",
        "/public/%2e%2e;x/admin",
        "/public/.;/x",
        "/public/%EF%BC%8E%EF%BC%8E/admin",
    ],
)
async def test_dot_segments_in_disguise_are_refused(
    portal: Client, forward_auth: Client, upstream: TestServer, trick: str
) -> None:
    """A dot segment with path parameters (read as `..` by Java servers) or in fullwidth dots
    (read as `..` after compatibility folding) is a 400 in both modes, never a bypass."""
    assert (await send(portal, trick)).status == 400
    for endpoint in VERIFY_ENDPOINTS:
        assert (await verdict(forward_auth, endpoint, trick)).status == 400
    assert reached(upstream) == []
