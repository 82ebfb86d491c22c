"""Intercept mode under attack: each test reproduces a way past the second factor found in
review, against an application with the quirks real ones have (a cookie scoped to /app, a
remember-me cookie, a second JSON login endpoint the operator did not name)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from tests.support import enrol_totp, intercept_app

PASSWORD = "pw"


def quirky_app() -> tuple[web.Application, list[str]]:
    """Logs in at /login and /api/login; `sid` is scoped to /app; `remember` logs in again."""
    sessions: dict[str, str] = {}
    remembered: dict[str, str] = {}
    seen_logins: list[str] = []

    async def login(request: web.Request) -> web.Response:
        form: Any = (
            await request.json()
            if request.content_type == "application/json"
            else await request.post()
        )
        seen_logins.append(str(form.get("username")))
        if form.get("password") != PASSWORD:
            return web.Response(text="bad password")
        sid = secrets.token_hex(8)
        sessions[sid] = str(form.get("username"))
        if request.path.startswith("/api"):
            response: web.Response = web.json_response({"ok": True})
        else:
            response = web.Response(status=302, headers={"Location": "/app/"})
        response.set_cookie("sid", sid, path="/app", httponly=True)
        if form.get("remember"):
            token = secrets.token_hex(8)
            remembered[token] = sessions[sid]
            response.set_cookie("remember", token, path="/", max_age=86400)
        return response

    async def page(request: web.Request) -> web.Response:
        user = sessions.get(request.cookies.get("sid", ""))
        if user is None and request.cookies.get("remember") in remembered:
            sid = secrets.token_hex(8)
            user = sessions[sid] = remembered[request.cookies["remember"]]
            response = web.Response(text=f"hello {user} (remembered)")
            response.set_cookie("sid", sid, path="/app")
            return response
        return web.Response(text=f"hello {user}")

    app = web.Application()
    app.router.add_post("/login", login)
    app.router.add_post("/api/login", login)
    app.router.add_get("/app/", page)
    return app, seen_logins


@pytest.fixture
async def quirky() -> AsyncIterator[tuple[TestServer, list[str]]]:
    app, seen = quirky_app()
    server = TestServer(app)
    await server.start_server()
    yield server, seen
    await server.close()


async def gateway_for(make_gateway: Any, server: TestServer) -> Any:
    app = intercept_app(str(server.make_url("")))
    app["intercept"] = {"session_cookies": ["sid"], "login": {"path": "/login"}}
    return await make_gateway({"app": app})


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, b"username=alice@example.com&password=pw&x=\xe9"),  # not UTF-8 and says nothing
        (FORM + "; charset=nope", b"username=alice@example.com&password=pw"),
        ("text/plain", b"username=alice@example.com&password=pw"),
        (FORM, b"password=pw"),  # no user name at all
        (FORM, b"username=alice@example.com&password=pw&username=mallory@example.com"),
        (
            "application/json",
            b'{"username": "alice@example.com", "password": "pw", "username": "m"}',
        ),
    ],
)
async def test_unreadable_or_ambiguous_login_is_never_forwarded(
    make_gateway: Any, quirky: tuple[TestServer, list[str]], content_type: str, body: bytes
) -> None:
    """A login whose user name the gateway cannot read exactly once gets a 400 and never reaches
    the application, so no signed-in cookie can be minted behind the gateway's back."""
    server, seen = quirky
    client = await gateway_for(make_gateway, server)
    response = await client.post(
        "/login", data=body, headers={"Content-Type": content_type}, allow_redirects=False
    )
    assert response.status == 400
    assert "could not be read" in await response.text()
    assert seen == []
    assert "hello None" in await (await client.get("/app/")).text()


@pytest.mark.parametrize("charset", ["latin-1", "utf-16le", "UTF-7"])
async def test_a_charset_other_than_utf8_is_refused(
    make_gateway: Any, quirky: tuple[TestServer, list[str]], charset: str
) -> None:
    """A form in another charset is refused, never forwarded: PHP ignores the declared charset
    and would read other bytes than the gateway did."""
    server, seen = quirky
    client = await gateway_for(make_gateway, server)
    body = "username=andr\xe9@example.com&password=pw".encode(
        "utf-16le" if charset == "utf-16le" else "latin-1"
    )
    response = await client.post(
        "/login",
        data=body,
        headers={"Content-Type": f"{FORM}; charset={charset}"},
        allow_redirects=False,
    )
    assert response.status == 400
    assert seen == []


async def test_cookie_from_an_unnamed_login_endpoint_is_never_lent(
    make_gateway: Any, quirky: tuple[TestServer, list[str]]
) -> None:
    """A session cookie minted by a login the operator did not name is held, but never sent
    upstream for anyone: only the configured login request carries held cookies."""
    server, _ = quirky
    client = await gateway_for(make_gateway, server)
    api = await client.post(
        "/api/login", json={"username": "alice@example.com", "password": PASSWORD}
    )
    assert api.status == 200
    assert "sid=" not in api.headers.get("Set-Cookie", "")
    assert await (await client.get("/app/")).text() == "hello None"


async def test_remember_me_cookie_waits_for_the_second_factor(
    make_gateway: Any, quirky: tuple[TestServer, list[str]]
) -> None:
    """Every cookie of a successful login answer is held until the second factor, so a
    remember-me cookie cannot log anyone in before it."""
    server, _ = quirky
    client = await gateway_for(make_gateway, server)
    login = await client.post(
        "/login",
        data={"username": "alice@example.com", "password": PASSWORD, "remember": "1"},
        allow_redirects=False,
    )
    assert login.status == 303
    assert login.headers.getall("Set-Cookie", []) and all(
        line.startswith("gateway_session=") for line in login.headers.getall("Set-Cookie")
    )
    _, done = await enrol_totp(client, login.headers["Location"])
    released = done.headers.getall("Set-Cookie")
    assert any(line.startswith("remember=") for line in released)
    assert any(line.startswith("sid=") for line in released)
    assert "hello alice@example.com" in await (await client.get("/app/")).text()


@pytest.mark.parametrize(
    "shape", ["x=1, sid={sid}", "x=1 sid={sid}", "x=1;sid={sid}, y=2", "sid ={sid}"]
)
async def test_smuggled_application_cookie_is_refused(
    make_gateway: Any, quirky: tuple[TestServer, list[str]], shape: str
) -> None:
    """An application cookie written so the gateway's parser misses it but the application's
    finds it (comma or space separators) is refused like any unbound one."""
    server, _ = quirky
    async with ClientSession() as direct:  # a signed-in sid obtained from the application itself
        login = await direct.post(
            server.make_url("/login"),
            data={"username": "alice@example.com", "password": PASSWORD},
            allow_redirects=False,
        )
        sid = login.cookies["sid"].value
    client = await gateway_for(make_gateway, server)
    async with ClientSession() as thief:
        response = await thief.get(
            client.make_url("/app/"), headers={"Cookie": shape.format(sid=sid)}
        )
        assert response.status == 403
        assert "alice" not in await response.text()


async def test_refusal_clears_a_path_scoped_cookie(
    make_gateway: Any, quirky: tuple[TestServer, list[str]]
) -> None:
    """The refusal expires the cookie under every path it could have been sent for, so a cookie
    scoped to /app does not leave the user stuck on the refusal page."""
    server, _ = quirky
    client = await gateway_for(make_gateway, server)
    async with ClientSession() as stale:
        response = await stale.get(client.make_url("/app/"), headers={"Cookie": "sid=old"})
        lines = response.headers.getall("Set-Cookie")
        assert any(line.startswith("sid=;") and "Path=/app;" in line for line in lines)
        assert any(line.startswith("sid=;") and "Path=/;" in line for line in lines)


async def test_login_body_arriving_slowly_is_read_whole(
    make_gateway: Any, quirky: tuple[TestServer, list[str]]
) -> None:
    """A login body sent in pieces is read to its end before it is forwarded."""
    server, seen = quirky
    client = await gateway_for(make_gateway, server)
    body = b"username=alice@example.com&password=pw&pad=" + b"x" * 200_000

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 50_000):
            yield body[start : start + 50_000]
            await asyncio.sleep(0.05)

    response = await asyncio.wait_for(
        client.post(
            "/login",
            data=pieces(),
            headers={"Content-Type": FORM, "Content-Length": str(len(body))},
            allow_redirects=False,
        ),
        timeout=10,
    )
    assert response.status == 303
    assert seen == ["alice@example.com"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, "csrf_token=\u00e9".encode()),
        (FORM, b"csrf_token=\xff"),
        (FORM + "; charset=nope", b"csrf_token=x"),
        ("multipart/form-data; boundary=X", b"--X\r\nbroken"),
    ],
)
async def test_malformed_gateway_forms_get_400(
    make_gateway: Any, quirky: tuple[TestServer, list[str]], content_type: str, body: bytes
) -> None:
    """A gateway form that cannot be read is a 400 page, never a 500."""
    server, _ = quirky
    client = await gateway_for(make_gateway, server)
    await client.get("/.gateway/logout")
    response = await client.post(
        "/.gateway/logout", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == 400
