"""Portal mode (the gateway's own login against argon2id hashes) and header mode (a trusted SSO
in front names the user), over HTTP with a real upstream that echoes what it receives."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.identity.portal import hash_password
from tests.support import code_for, csrf_from_page, portal_app, portal_login, secret_from_page


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"path": request.path, "headers": dict(request.headers)})


@pytest.fixture
async def echo_server() -> Any:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    path.write_text(
        "users:\n"
        "  carol@example.com:\n"
        f"    password: '{hash_password('carol-password')}'\n"
        "    name: Carol Example\n"
        "    groups: [billing, admins]\n"
    )
    return path


async def test_portal_flow_sets_identity_headers(
    make_gateway: Any, echo_server: TestServer, users_file: Path
) -> None:
    """Anonymous -> login page -> password -> enrol -> the application receives Remote-* headers
    from the session and never the client's own."""
    client = await make_gateway({"app": portal_app(str(echo_server.make_url("")), users_file)})
    first = await client.get("/reports?x=1", allow_redirects=False)
    assert first.status == 303
    assert first.headers["Location"] == "/.gateway/login?rd=%2Freports%3Fx%3D1"
    login = await portal_login(client, "Carol@Example.com", "carol-password", rd="%2Freports")
    assert login.status == 303 and login.headers["Location"].startswith("/.gateway/enrol")
    page = await client.get(login.headers["Location"])
    html = await page.text()
    done = await client.post(
        login.headers["Location"],
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret_from_page(html))},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/reports"
    seen = await (
        await client.get("/reports", headers={"Remote-User": "mallory", "Remote_Groups": "root"})
    ).json()
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["remote-user"] == "carol@example.com"
    assert headers["remote-name"] == "Carol Example"
    assert headers["remote-groups"] == "billing,admins"
    assert "remote_groups" not in headers
    # The gateway's own cookies (session, CSRF, trusted network) never reach the application;
    # the application's own go through.
    client.session.cookie_jar.update_cookies({"app_pref": "dark", "gateway_trust": "x"})
    seen = await (await client.get("/reports", headers={"Cookie": "__Host-gateway_session=y"})).json()
    assert "gateway_session" in [c.key for c in client.session.cookie_jar]
    cookies = {k.lower(): v for k, v in seen["headers"].items()}.get("cookie", "")
    assert sorted(cookies.split("; ")) == ["app_pref=dark"], cookies


async def test_wrong_password_and_unknown_user_look_the_same(
    make_gateway: Any, echo_server: TestServer, users_file: Path
) -> None:
    """No user enumeration by message: an unknown user and a wrong password get the same page,
    and both cost one argon2 verification."""
    client = await make_gateway({"app": portal_app(str(echo_server.make_url("")), users_file)})
    timings = {}
    bodies = {}
    for user in ("carol@example.com", "nobody@example.com"):
        started = time.perf_counter()
        response = await portal_login(client, user, "not-the-password")
        timings[user] = time.perf_counter() - started
        assert response.status == 401
        bodies[user] = re.sub(
            r'nonce[-=]"?[\w-]+', "NONCE", (await response.text()).replace(user, "USER")
        )
    assert bodies["carol@example.com"] == bodies["nobody@example.com"]
    assert "The user name or password is not right" in bodies["nobody@example.com"]
    # The same work either way: neither path is an order of magnitude faster than the other.
    fast, slow = sorted(timings.values())
    assert slow < fast * 10


def header_app(upstream: str) -> dict[str, Any]:
    return {
        "upstream": upstream,
        "hosts": ["*"],
        "identity": "header",
        "header": {"user_header": "X-SSO-User"},
    }


async def test_header_mode_trusts_only_trusted_proxies(
    make_gateway: Any, echo_server: TestServer
) -> None:
    """From a trusted proxy the named user goes to 2FA; the same header from an untrusted peer is
    ignored and the request is refused."""
    upstream = str(echo_server.make_url(""))
    trusted = await make_gateway({"app": header_app(upstream)}, trusted_proxies=["127.0.0.1/32"])
    response = await trusted.get(
        "/", headers={"X-SSO-User": "dave@example.com"}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"].startswith("/.gateway/enrol")
    missing = await trusted.get("/", allow_redirects=False)
    assert missing.status == 403


async def test_header_mode_from_untrusted_peer(make_gateway: Any, echo_server: TestServer) -> None:
    """The trusted proxy list does not include this client: its header names nobody."""
    client = await make_gateway(
        {"app": header_app(str(echo_server.make_url("")))}, trusted_proxies=["192.0.2.0/24"]
    )
    response = await client.get(
        "/", headers={"X-SSO-User": "dave@example.com"}, allow_redirects=False
    )
    assert response.status == 403
    assert "did not say who you are" in await response.text()


async def test_cookies_are_secure_with_host_prefix_over_tls(
    make_gateway: Any, echo_server: TestServer, users_file: Path
) -> None:
    """Served over TLS (here: as told by a trusted proxy), cookies get Secure and `__Host-`."""
    client = await make_gateway(
        {"app": portal_app(str(echo_server.make_url("")), users_file)},
        trusted_proxies=["127.0.0.1/32"],
    )
    tls = {"X-Forwarded-Proto": "https"}
    page = await client.get("/.gateway/login", headers=tls)
    csrf_cookie = page.headers["Set-Cookie"]
    assert csrf_cookie.startswith("__Host-gateway_csrf=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in csrf_cookie
    token = csrf_from_page(await page.text())
    value = csrf_cookie.split(";", 1)[0].split("=", 1)[1]
    login = await client.post(
        "/.gateway/login",
        data={"csrf_token": token, "username": "carol@example.com", "password": "carol-password"},
        headers={**tls, "Cookie": f"__Host-gateway_csrf={value}"},
        allow_redirects=False,
    )
    assert login.status == 303
    session_cookie = login.headers["Set-Cookie"]
    assert session_cookie.startswith("__Host-gateway_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in session_cookie
    assert "Domain" not in session_cookie


async def test_plain_http_cookies_have_no_secure_flag(
    make_gateway: Any, echo_server: TestServer, users_file: Path
) -> None:
    """Over plain HTTP from an untrusted peer, X-Forwarded-Proto is ignored: no Secure cookie
    that the browser would then drop."""
    client = await make_gateway({"app": portal_app(str(echo_server.make_url("")), users_file)})
    page = await client.get("/.gateway/login", headers={"X-Forwarded-Proto": "https"})
    assert page.headers["Set-Cookie"].startswith("gateway_csrf=")
    assert "Secure" not in page.headers["Set-Cookie"]
    assert "HttpOnly" in page.headers["Set-Cookie"]
