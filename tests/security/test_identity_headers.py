"""Client-sent identity headers (Caddy GHSA-7r4p-vjf4-gxv4) in every spelling, and headers
dropped through `Connection:` (Traefik CVE-2024-45410), against every identity mode and forward
auth: the application hears who the user is from the gateway alone."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.handlers.entry.forward_auth import IDENTITY_HEADERS
from tests.security.conftest import SSO_HEADER, USER, Client, reached, send
from tests.security.test_open_redirect import enrolled_header_user
from tests.security.test_path_rules import verified_forward_auth_cookie

IDENTITY_NAMES = [
    "Remote-User",
    "Remote-Email",
    "Remote-Groups",
    "Remote-Name",
    "X-Remote-User",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Groups",
    "X-Forwarded-Preferred-Username",
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    SSO_HEADER,
]


def spellings(name: str) -> list[str]:
    """The name as written, in lower and upper case, with `_` or `.` for `-` (PHP reads all
    three as `_`: Remote.User is its HTTP_REMOTE_USER behind Caddy's php_fastcgi), and mixed."""
    underscored, dotted = name.replace("-", "_"), name.replace("-", ".")
    return sorted(
        {
            name,
            name.lower(),
            name.upper(),
            underscored,
            underscored.lower(),
            underscored.upper(),
            dotted,
            dotted.lower(),
            "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name)),
        }
    )


def batches(skip: str = "") -> list[list[tuple[str, str]]]:
    """Every spelling of every identity header naming mallory (the first spelling twice), in
    batches small enough for the server's limit on header lines."""
    headers = []
    for name in IDENTITY_NAMES:
        if name == skip:
            continue
        for index, spelling in enumerate(spellings(name)):
            headers.append((spelling, f"mallory{index}"))
        headers.append((name, "mallory@evil.example"))
    return [headers[i : i + 40] for i in range(0, len(headers), 40)]


def jar(client: Client) -> str:
    return "; ".join(f"{m.key}={m.value}" for m in client.session.cookie_jar)


def assert_no_mallory(upstream: TestServer) -> list[tuple[str, str]]:
    (entry,) = reached(upstream)[-1:]
    headers: list[tuple[str, str]] = entry["headers"]
    leaked = [(k, v) for k, v in headers if "mallory" in v]
    assert not leaked, leaked
    return headers


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


async def test_header_mode(header: Client, upstream: TestServer) -> None:
    """The trusted SSO names the user once; every other spelling (and the SSO header's own
    underscore and case variants next to it) is dropped, on protected and bypass routes."""
    await enrolled_header_user(header, USER)
    for target, extra in [
        (t, b) for t in ("/reports", "/public/x", "/light/x") for b in batches(SSO_HEADER)
    ]:
        answer = await send(header, target, [(SSO_HEADER, USER), ("Cookie", jar(header)), *extra])
        assert answer.status == 200, (target, answer.body[:200])
        seen = assert_no_mallory(upstream)
        assert values(seen, "Remote-User") == ([] if target == "/public/x" else [USER])


async def test_header_mode_underscore_spelling_is_not_the_user(header: Client) -> None:
    """A front proxy that strips `X-SSO-User` but passes `X_SSO_User` must not let the client
    name itself: only the exact header counts."""
    for spelling in spellings(SSO_HEADER):
        if spelling.lower() == SSO_HEADER.lower():
            continue
        answer = await send(header, "/reports", [(spelling, USER)])
        assert answer.status == 403, spelling


async def test_intercept_mode(intercept: Client, legacy_server: TestServer) -> None:
    """The application's own login, then the second factor: the application receives none of
    the client's identity headers (intercept sets none of its own)."""
    from tests.identity.test_intercept import app_login
    from tests.support import enrol_totp

    login = await app_login(intercept, "alice@example.com", "alice-password")
    await enrol_totp(intercept, login.headers["Location"])
    for batch in batches():
        answer = await send(intercept, "/", [("Cookie", jar(intercept)), *batch])
        assert answer.status == 200
        assert b"mallory" not in answer.body  # the demo application greets whoever it is told


async def test_portal_mode_with_connection_listing(portal: Client, upstream: TestServer) -> None:
    """Verified portal session: the client's spellings are dropped, and listing the gateway's
    own identity headers in Connection does not make the gateway drop the values it sets."""
    from tests.security.conftest import PASSWORD
    from tests.support import code_for, csrf_from_page, portal_login, secret_from_page

    await portal_login(portal, USER, PASSWORD)
    html = await (await portal.get("/.gateway/enrol")).text()
    await portal.post(
        "/.gateway/enrol",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    listed = ", ".join(["close", *IDENTITY_HEADERS, "X-Forwarded-For", "X-Request-Id", "Cookie"])
    answer = await raw(portal, "/reports", [], jar(portal), connection=listed)
    assert answer.status == 303  # Connection: Cookie hides the session: anonymous, not forwarded
    assert reached(upstream) == []
    for batch in batches(skip=SSO_HEADER):  # a header-mode application's own header
        answer = await raw(portal, "/reports", batch, jar(portal), listed.replace(", Cookie", ""))
        assert answer.status == 200
        seen = assert_no_mallory(upstream)
        assert values(seen, "Remote-User") == [USER]
        assert values(seen, "Remote-Email") == [USER]
        assert values(seen, "Remote-Groups") == ["billing"]
        assert values(seen, "X-Forwarded-For") == ["127.0.0.1"]
        assert len(values(seen, "X-Request-Id")) == 1


async def raw(
    client: Client,
    target: str,
    headers: list[tuple[str, str]],
    cookie: str,
    connection: str | None = None,
) -> Any:
    """A raw request whose Connection header is the test's own (not `close` alone)."""
    from tests.proxy.helpers import raw_request

    extra = [("Connection", connection)] if connection is not None else []
    return await raw_request(
        client.server.host, client.server.port, target, [*extra, ("Cookie", cookie), *headers]
    )


@pytest.mark.parametrize("endpoint", ["/.gateway/verify", "/.gateway/auth-request"])
async def test_forward_auth_answer_always_names_every_identity_header(
    forward_auth: Client, endpoint: str
) -> None:
    """The allow answer carries every identity header the front proxy copies, with the
    session's values (empty on bypass), never one of the client's: a proxy that keeps the
    client's header when the answer lacks it (Caddy) cannot be fed a made-up user."""
    cookie = await verified_forward_auth_cookie(forward_auth)
    for uri, user, batch in [
        (u, n, b) for u, n in (("/reports", USER), ("/public/x", "")) for b in batches()
    ]:
        answer = await send(
            forward_auth,
            endpoint,
            [
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri" if endpoint.endswith("verify") else "X-Original-URI", uri),
                ("X-Forwarded-Host", "app.test"),
                ("Cookie", cookie),
                ("Connection", ", ".join(IDENTITY_HEADERS)),
                *batch,
            ],
        )
        assert answer.status == 200, (uri, answer.body[:200])
        for name in IDENTITY_HEADERS:
            got = answer.get(name)
            assert len(got) == 1, (name, got)
            assert "mallory" not in got[0], (name, got)
        assert answer.get("Remote-User") == [user]
