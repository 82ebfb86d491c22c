"""Intercept mode with applications that do not live by one session cookie: a single-page
application whose login hands out a bearer token in its JSON answer (Node-RED's shape), a wiki
whose login is told by a body field and that signs in from `u`/`p` on any request (DokuWiki's
shape), WebSockets, and an application cookie that rotates while requests are in flight."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestServer

from tests.support import enrol_totp, intercept_app

USERS = {"alice@example.com": "alice-pw", "mallory@example.com": "mallory-pw"}


def token_app(seen: list[dict[str, Any]]) -> web.Application:
    tokens: dict[str, str] = {}

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        user = str(form.get("username", ""))
        if USERS.get(user) != form.get("password"):
            return web.json_response({"error": "unauthorized"}, status=401)
        value = secrets.token_hex(8)
        tokens[value] = user
        return web.json_response({"access_token": value, "token_type": "Bearer"})

    def user_of(request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None

    async def settings(request: web.Request) -> web.Response:
        user = user_of(request)
        if user is None:
            return web.json_response({}, status=401)
        return web.json_response({"user": {"username": user}})

    async def api(request: web.Request) -> web.Response:
        seen.append({"auth": request.headers.get("Authorization"), "query": request.query_string})
        user = user_of(request) or tokens.get(request.query.get("access_token", ""))
        return web.Response(text=f"user={user}")

    async def comms(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("hello")
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_post("/auth/token", token)
    app.router.add_get("/settings", settings)
    app.router.add_get("/api/flows", api)
    app.router.add_get("/comms", comms)
    app.router.add_get("/", editor)
    return app


async def editor(request: web.Request) -> web.Response:
    return web.Response(text="editor")


@pytest.fixture
async def spa() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    server = TestServer(token_app(seen))
    await server.start_server()
    yield server, seen
    await server.close()


def spa_settings(server: TestServer) -> dict[str, Any]:
    intercept = {
        "session_cookies": [],
        "login": {"path": "/auth/token", "token": "access_token"},
        "whoami": {"path": "/settings", "json": "user.username"},
        "credentials": {"query": ["access_token"]},
    }
    return {"app": intercept_app(str(server.make_url("")), intercept=intercept)}


async def token_login(client: Any, user: str = "alice@example.com") -> Any:
    return await client.post(
        "/auth/token",
        data={"username": user, "password": USERS[user]},
        allow_redirects=False,
    )


async def test_a_token_is_released_only_after_the_second_factor_and_is_bound(
    make_gateway: Any, spa: tuple[TestServer, list[dict[str, Any]]]
) -> None:
    """The login answer's token stays with the gateway until the second factor; signing in
    again from the verified session gets it, bound: it reaches the application with this
    session only, and no other token or Basic credential does."""
    server, seen = spa
    client = await make_gateway(spa_settings(server))
    first = await token_login(client)
    assert first.status == 303
    assert "access_token" not in await first.text()
    await enrol_totp(client, first.headers["Location"])
    again = await token_login(client)
    assert again.status == 200
    token = (await again.json())["access_token"]
    mine = await client.get("/api/flows", headers={"Authorization": f"Bearer {token}"})
    assert await mine.text() == "user=alice@example.com"
    # mallory's own token, from her own login straight at the application, is not bound here
    async with client.session.post(
        server.make_url("/auth/token"),
        data={"username": "mallory@example.com", "password": "mallory-pw"},
    ) as direct:
        stolen = (await direct.json())["access_token"]
    other = await client.get("/api/flows", headers={"Authorization": f"Bearer {stolen}"})
    assert await other.text() == "user=None"
    assert seen[-1]["auth"] is None
    query = await client.get(f"/api/flows?access_token={stolen}")
    assert await query.text() == "user=None"
    basic = await client.get("/api/flows", headers={"Authorization": "Basic YTpi"})
    assert await basic.text() == "user=None"


async def test_a_token_alone_gets_nothing_without_a_session(
    make_gateway: Any, spa: tuple[TestServer, list[dict[str, Any]]]
) -> None:
    """A token taken straight from the application (the password alone) is stripped."""
    server, seen = spa
    client = await make_gateway(spa_settings(server))
    async with client.session.post(
        server.make_url("/auth/token"),
        data={"username": "alice@example.com", "password": "alice-pw"},
    ) as direct:
        token = (await direct.json())["access_token"]
    answer = await client.get(
        f"/api/flows?access_token={token}", headers={"Authorization": f"Bearer {token}"}
    )
    assert await answer.text() == "user=None"
    assert seen[-1] == {"auth": None, "query": ""}


async def test_a_websocket_needs_a_verified_session(
    make_gateway: Any, spa: tuple[TestServer, list[dict[str, Any]]]
) -> None:
    """What travels inside a WebSocket is out of sight: no upgrade without a verified session."""
    server, _ = spa
    client = await make_gateway(spa_settings(server))
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/comms")
    assert refused.value.status == 403
    first = await token_login(client)
    await enrol_totp(client, first.headers["Location"])
    ws = await client.ws_connect("/comms")
    assert await ws.receive_str() == "hello"
    await ws.close()


# --- a wiki: the login told by a body field, credentials on any request -----------------------


def wiki_app(seen: list[str]) -> web.Application:
    sessions: dict[str, str] = {}

    async def doku(request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else {}
        fields = {**request.query, **form}
        response = web.Response(text="")
        user = sessions.get(request.cookies.get("DokuWiki", ""))
        if fields.get("u") and USERS.get(str(fields["u"])) == fields.get("p"):
            sid = secrets.token_hex(12)
            user = sessions[sid] = str(fields["u"])
            if fields.get("do") == "login":
                seen.append("login")
                response = web.Response(status=302, headers={"Location": "/doku.php?id=start"})
                response.set_cookie("DokuWiki", sid)
                return response
            response.set_cookie("DokuWiki", sid)
        response.text = f"page {request.query.get('id')} as {user}"
        return response

    app = web.Application()
    app.router.add_route("*", "/doku.php", doku)
    return app


@pytest.fixture
async def wiki() -> AsyncIterator[tuple[TestServer, list[str]]]:
    seen: list[str] = []
    server = TestServer(wiki_app(seen))
    await server.start_server()
    yield server, seen
    await server.close()


def wiki_settings(server: TestServer) -> dict[str, Any]:
    intercept = {
        "session_cookies": ["DokuWiki"],
        "login": {"path": "/doku.php", "fields": {"do": "login"}, "username_field": "u"},
        "credentials": {"query": ["u", "p"], "fields": ["u", "p"]},
    }
    return {"app": intercept_app(str(server.make_url("")), intercept=intercept)}


async def test_a_login_told_by_a_body_field_is_the_login(
    make_gateway: Any, wiki: tuple[TestServer, list[str]]
) -> None:
    """DokuWiki's form posts `do=login` in the body and `id` in both query and body: it is the
    login, and goes to the second factor."""
    server, seen = wiki
    client = await make_gateway(wiki_settings(server))
    answer = await client.post(
        "/doku.php?id=start",
        data={"id": "start", "do": "login", "u": "alice@example.com", "p": "alice-pw"},
        allow_redirects=False,
    )
    assert answer.status == 303
    assert answer.headers["Location"].startswith("/.gateway/enrol")
    assert seen == ["login"]


@pytest.mark.parametrize("where", ["body", "query"])
async def test_credentials_outside_the_login_never_reach_the_application(
    make_gateway: Any, wiki: tuple[TestServer, list[str]], where: str
) -> None:
    """`u` and `p` sent with any other request (which the wiki would sign in from) are refused
    in a body and stripped from a query string."""
    server, _ = wiki
    client = await make_gateway(wiki_settings(server))
    creds = {"u": "alice@example.com", "p": "alice-pw"}
    if where == "body":
        answer = await client.post("/doku.php?id=private", data={"do": "show", **creds})
        assert answer.status == 400
    else:
        answer = await client.get("/doku.php?id=private&u=alice%40example.com&p=alice-pw&U.x=1")
        assert await answer.text() == "page private as None"


async def test_a_rotated_cookie_is_honoured_for_a_moment(
    make_gateway: Any, wiki: tuple[TestServer, list[str]]
) -> None:
    """An application cookie the application replaces (the wiki signs in again) stays good for
    the requests the browser had already sent with the old value."""
    server, _ = wiki
    settings = wiki_settings(server)
    settings["app"]["intercept"]["credentials"] = {}
    client = await make_gateway(settings)
    first = await client.post(
        "/doku.php?id=start",
        data={"do": "login", "u": "alice@example.com", "p": "alice-pw"},
        allow_redirects=False,
    )
    await enrol_totp(client, first.headers["Location"])
    old = next(m.value for m in client.session.cookie_jar if m.key == "DokuWiki")
    rotate = await client.get("/doku.php?id=x&u=alice%40example.com&p=alice-pw")
    assert "as alice@example.com" in await rotate.text()
    new = next(m.value for m in client.session.cookie_jar if m.key == "DokuWiki")
    assert new != old
    gateway_cookie = next(m.value for m in client.session.cookie_jar if m.key == "gateway_session")
    late = await client.session.get(
        client.make_url("/doku.php?id=y"),
        headers={"Cookie": f"gateway_session={gateway_cookie}; DokuWiki={old}"},
    )
    assert late.status == 200
