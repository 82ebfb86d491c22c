"""Intercept mode over HTTP: the demo's legacy application behind an in-process gateway."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FixedClock
from gateway.demo.legacy import create_legacy_app
from tests.conftest import LEGACY_ACCOUNTS
from tests.support import (
    code_for,
    csrf_from_page,
    enrol_after_login,
    enrol_totp,
    gateway_now,
    intercept_app,
    legacy_logout,
    secret_from_page,
)

Client = TestClient[Any, Any]
LEGACY_CSRF = re.compile(r'name="csrf" value="(\w+)"')


async def app_login(client: Client, user: str, password: str) -> Any:
    page = await client.get("/login")
    csrf = LEGACY_CSRF.search(await page.text())
    assert csrf, "the application's login form"
    return await client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": user, "password": password},
        allow_redirects=False,
    )


def cookie(client: Client, name: str) -> str | None:
    for morsel in client.session.cookie_jar:
        if morsel.key == name:
            return morsel.value
    return None


async def signed_in(
    make_gateway: Any, legacy_server: TestServer, clock: FixedClock | None = None
) -> tuple[Client, str]:
    client = await make_gateway(
        {"legacy": intercept_app(str(legacy_server.make_url("")))}, clock=clock
    )
    login = await app_login(client, "alice@example.com", "alice-password")
    return client, await enrol_after_login(client, login, clock)


async def test_pre_login_cookie_is_held_by_the_gateway(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """The application's session cookie set before login never reaches the browser, yet the
    application's CSRF check (which depends on it) still works through the gateway."""
    client = await make_gateway({"legacy": intercept_app(str(legacy_server.make_url("")))})
    page = await client.get("/login")
    assert "legacy_session" not in page.headers.getall("Set-Cookie", [""])[0]
    assert cookie(client, "legacy_session") is None
    assert cookie(client, "gateway_session") is not None
    login = await app_login(client, "alice@example.com", "alice-password")
    assert login.status == 303
    assert login.headers["Location"] == "/.gateway/enrol?rd=%2F"
    assert cookie(client, "legacy_session") is None


async def test_wrong_password_shows_the_application_page(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """A refused password is the application's business: its page comes back, no 2FA starts."""
    client = await make_gateway({"legacy": intercept_app(str(legacy_server.make_url("")))})
    response = await app_login(client, "alice@example.com", "wrong")
    assert response.status == 200
    assert "Invalid email or password" in await response.text()
    assert cookie(client, "legacy_session") is None


async def test_cookie_released_after_second_factor_and_bound(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """After enrolment the browser gets the application's cookie and reaches the application."""
    client, _ = await signed_in(make_gateway, legacy_server)
    assert cookie(client, "legacy_session") is not None
    home = await client.get("/")
    assert "Welcome, alice@example.com" in await home.text()


async def test_pending_session_cannot_reach_the_application(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Between the password and the code, every application path sends the browser to 2FA."""
    client = await make_gateway({"legacy": intercept_app(str(legacy_server.make_url("")))})
    await app_login(client, "alice@example.com", "alice-password")
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/.gateway/enrol")


async def test_stolen_application_cookie_is_refused(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """The application cookie alone, without the verified gateway session it was released to, is
    refused and cleared; the application never sees the request."""
    client, _ = await signed_in(make_gateway, legacy_server)
    stolen = cookie(client, "legacy_session")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as thief:
        response = await thief.get(
            client.make_url("/"), headers={"Cookie": f"legacy_session={stolen}"}
        )
        assert response.status == 403
        assert "Please sign in again" in await response.text()
        assert any(v.startswith("legacy_session=;") for v in response.headers.getall("Set-Cookie"))


async def test_application_cookie_from_another_session_is_refused(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """A verified gateway session does not vouch for an application cookie it was not given."""
    client, _ = await signed_in(make_gateway, legacy_server)
    client.session.cookie_jar.update_cookies(
        {"legacy_session": "0123456789abcdef"}, client.make_url("/")
    )
    response = await client.get("/", allow_redirects=False)
    assert response.status == 403


async def test_second_login_asks_for_the_code_again(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Signing out of the application ends the gateway session; signing in again means the
    challenge (not enrolment), where a wrong code says so and a replayed one is refused."""
    client, secret = await signed_in(make_gateway, legacy_server)
    copied = cookie(client, "gateway_session")
    logout = await legacy_logout(client)
    assert any(v.startswith("gateway_session=;") for v in logout.headers.getall("Set-Cookie"))
    async with ClientSession() as other:  # the old id is dead on the server, not just cleared
        page = await other.get(
            client.make_url("/.gateway/logout"), headers={"Cookie": f"gateway_session={copied}"}
        )
        assert "You are not signed in" in await page.text()
    login = await app_login(client, "alice@example.com", "alice-password")
    location = login.headers["Location"]
    assert location.startswith("/.gateway/challenge")
    page = await client.get(location)
    token = csrf_from_page(await page.text())
    wrong = await client.post(location, data={"csrf_token": token, "code": "000000"})
    assert wrong.status == 401
    assert "That code is not right" in await wrong.text()
    replay = await client.post(
        location, data={"csrf_token": token, "code": code_for(secret, gateway_now(client))}
    )
    assert replay.status == 401
    assert "already been used" in await replay.text()
    ok = await client.post(
        location,
        data={"csrf_token": token, "code": code_for(secret, gateway_now(client), offset_steps=1)},
        allow_redirects=False,
    )
    assert ok.status == 303
    assert "Welcome" in await (await client.get("/")).text()


async def test_session_id_changes_at_every_level(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Anonymous, first factor and verified each get a new gateway session id, and the old ids
    stop working."""
    client = await make_gateway({"legacy": intercept_app(str(legacy_server.make_url("")))})
    await client.get("/login")
    anonymous = cookie(client, "gateway_session")
    login = await app_login(client, "alice@example.com", "alice-password")
    first = cookie(client, "gateway_session")
    await enrol_totp(client, login.headers["Location"])
    verified = cookie(client, "gateway_session")
    assert len({anonymous, first, verified}) == 3
    async with ClientSession() as other:
        for old in (anonymous, first):
            response = await other.get(
                client.make_url("/.gateway/challenge"), headers={"Cookie": f"gateway_session={old}"}
            )
            assert response.status == 403  # no session: sign in again


async def test_gateway_logout_ends_the_session_on_the_server(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """POST /.gateway/logout deletes the session server-side: a copy of the cookie is useless."""
    client, _ = await signed_in(make_gateway, legacy_server)
    copied = cookie(client, "gateway_session")
    app_cookie = cookie(client, "legacy_session")
    page = await client.get("/.gateway/logout")
    token = csrf_from_page(await page.text())
    out = await client.post("/.gateway/logout", data={"csrf_token": token}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/"
    async with ClientSession() as other:
        response = await other.get(
            client.make_url("/"),
            headers={"Cookie": f"gateway_session={copied}; legacy_session={app_cookie}"},
            allow_redirects=False,
        )
        assert response.status == 403


async def test_posts_without_csrf_token_are_refused(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Every POST the gateway serves needs its CSRF token."""
    client = await make_gateway({"legacy": intercept_app(str(legacy_server.make_url("")))})
    login = await app_login(client, "alice@example.com", "alice-password")
    location = login.headers["Location"]
    secret = secret_from_page(await (await client.get(location)).text())
    for path in (location, "/.gateway/challenge", "/.gateway/logout"):
        for form in ({}, {"csrf_token": "0" * 64}):
            response = await client.post(
                path, data={**form, "code": code_for(secret, gateway_now(client))}
            )
            assert response.status == 400, path
            assert "did not come from this site" in await response.text()


async def test_application_rotating_its_cookie_stays_bound(make_gateway: Any) -> None:
    """When a verified application re-issues its session cookie, the new value is bound too."""

    async def rotate(request: web.Request) -> web.Response:
        response = web.Response(text="rotated")
        response.set_cookie("legacy_session", "rotated-value", path="/")
        return response

    app = create_legacy_app(LEGACY_ACCOUNTS)
    app.router.add_get("/rotate", rotate)
    server = TestServer(app)
    await server.start_server()
    try:
        client, _ = await signed_in(make_gateway, server)
        rotated = await client.get("/rotate")
        assert rotated.status == 200
        assert cookie(client, "legacy_session") == "rotated-value"
        again = await client.get("/rotate")
        assert again.status == 200
    finally:
        await server.close()


async def test_five_wrong_codes_end_the_pending_session(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Guessing codes is bounded per sign-in: the fifth wrong code ends the pending session, and
    even the right code is then refused until the password is entered again (after a short
    wait: from now on each try from here waits a little longer)."""
    clock = FixedClock(time.time())
    client, secret = await signed_in(make_gateway, legacy_server, clock)
    await legacy_logout(client)
    login = await app_login(client, "alice@example.com", "alice-password")
    location = login.headers["Location"]
    token = csrf_from_page(await (await client.get(location)).text())
    for attempt in range(1, 6):
        response = await client.post(location, data={"csrf_token": token, "code": "000000"})
        assert response.status == (429 if attempt == 5 else 401), attempt
    assert "Too many wrong codes" in await response.text()
    late = await client.post(
        location, data={"csrf_token": token, "code": code_for(secret, clock(), offset_steps=1)}
    )
    assert late.status == 403
    early = await app_login(client, "alice@example.com", "alice-password")
    assert early.status == 429 and early.headers["Retry-After"] == "2"
    clock.advance(2)
    again = await app_login(client, "alice@example.com", "alice-password")
    assert again.headers["Location"].startswith("/.gateway/challenge")


async def test_absolute_redirect_to_own_host_after_login(make_gateway: Any) -> None:
    """An application that redirects to its public absolute URL after login sends the browser
    there after the challenge, as a relative path."""

    async def login(request: web.Request) -> web.Response:
        response = web.Response(
            status=302, headers={"Location": f"http://{request.host}/welcome?x=1"}
        )
        response.set_cookie("legacy_session", "abc", path="/")
        return response

    app = web.Application()
    app.router.add_post("/login", login)
    server = TestServer(app)
    await server.start_server()
    try:
        client = await make_gateway({"legacy": intercept_app(str(server.make_url("")))})
        response = await client.post(
            "/login", data={"username": "alice@example.com"}, allow_redirects=False
        )
        assert response.headers["Location"] == "/.gateway/enrol?rd=%2Fwelcome%3Fx%3D1"
    finally:
        await server.close()


async def test_application_logout_ends_that_session_only(
    make_gateway: Any, legacy_server: TestServer
) -> None:
    """Signing out of the application in one browser ends that browser's gateway session only
    (a cross-site sign-out link cannot sign a person out everywhere); the other browser stays
    signed in."""
    client, secret = await signed_in(make_gateway, legacy_server)
    async with ClientSession(
        base_url=str(client.make_url("")), cookie_jar=CookieJar(unsafe=True)
    ) as other:
        page = await other.get("/login")
        csrf = LEGACY_CSRF.search(await page.text())
        assert csrf
        login = await other.post(
            "/login",
            data={
                "csrf": csrf.group(1),
                "username": "alice@example.com",
                "password": "alice-password",
            },
            allow_redirects=False,
        )
        location = login.headers["Location"]
        html = await (await other.get(location)).text()
        done = await other.post(
            location,
            data={
                "csrf_token": csrf_from_page(html),
                "code": code_for(secret, gateway_now(client), offset_steps=1),
            },
            allow_redirects=False,
        )
        assert done.status == 303
        assert (await other.get("/", allow_redirects=False)).status == 200
        await legacy_logout(client)
        assert (await client.get("/", allow_redirects=False)).status != 200
        after = await other.get("/", allow_redirects=False)
        assert after.status == 200
