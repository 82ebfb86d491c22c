"""Security review of intercept mode: attacks through the gateway's public HTTP surface.

Each test asserts the SECURE behaviour, so a failing test is a finding. The upstream
applications are small aiohttp apps that mimic, each in one documented respect, how a real
framework reads a request:

- `php_app`: a DokuWiki-shaped PHP page. PHP's request variables (main/php_variables.c,
  main/SAPI.c, main/rfc1867.c): names url-decoded then cut at the first NUL (strlen in
  php_register_variable_ex), leading spaces dropped, `.`/` `/`[` to `_`; the media type cut at
  the first `;`, `,` or space; the multipart boundary found with strstr("boundary"); and
  $_REQUEST built from variables_order "EGPCS" when no php.ini sets request_order (the official
  Docker images ship none), so cookies override POST which overrides GET.
- `express_app`: Express (case-insensitive, non-strict routing), body-parser (inflates gzip and
  deflate request bodies), express-session without regenerate() at login (the session id is
  not changed by a login; Passport before 0.6 did the same).
- `servlet` flavour of express_app's router: Tomcat/Jetty/Spring drop `;jsessionid=...` path
  parameters before matching a servlet path.
- `rack_app`: Rack 2 (Rails before Rack 3) splits a query string on `&` and `;`.
- `rails_app`: Rails' ParamsWrapper copies a JSON login's top-level keys under the controller's
  key (`session`) only when the body has no such key already; the controller reads
  `params[:session][:email]`.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote_plus, unquote_to_bytes

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support import enrol_after_login, enrol_totp, intercept_app

USERS = {"alice@example.com": "alice-pw", "mallory@example.com": "mallory-pw"}
FORM = "application/x-www-form-urlencoded"


async def mallory_verified(client: Any, login: str = "/login") -> None:
    """mallory's own password on the login at `login`, then her own second factor."""
    answer = await client.post(
        login,
        data={"username": "mallory@example.com", "password": "mallory-pw"},
        allow_redirects=False,
    )
    await enrol_after_login(client, answer)


async def raw_get(client: Any, path: str, cookie: str) -> int:
    """A GET with exactly this Cookie header (no cookie jar merging it)."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
        session.get(client.make_url(path), headers={"Cookie": cookie}) as answer,
    ):
        return answer.status


async def serve(app: web.Application) -> AsyncIterator[TestServer]:
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


# --- PHP (DokuWiki's shape) ------------------------------------------------------------------


def php_name(decoded: str) -> str:
    """PHP's php_register_variable_ex: cut at NUL (strlen), leading spaces dropped, `a[..]`
    read as `a`, then `.`, ` ` and an unmatched `[` to `_`."""
    name = decoded.split("\x00", 1)[0].lstrip(" ")
    bracket = name.find("[")
    if bracket > 0 and "]" in name[bracket:]:
        name = name[:bracket]
    return name.replace(".", "_").replace(" ", "_").replace("[", "_")


def php_parse_str(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in text.split("&"):
        key, _, value = pair.partition("=")
        name = php_name(unquote_to_bytes(key.replace("+", " ")).decode("utf-8", "replace"))
        if name:
            found[name] = unquote_plus(value)
    return found


def php_cookies(headers: list[str]) -> dict[str, str]:
    """PHP >= 7.4.11: cookie names are not url-decoded; split on `;`."""
    found: dict[str, str] = {}
    for header in headers:
        for part in header.split(";"):
            key, eq, value = part.lstrip().partition("=")
            if eq and key:
                found[php_name(key)] = unquote_to_bytes(value).decode("utf-8", "replace")
    return found


def php_media_type(content_type: str) -> str:
    """SAPI.c sapi_read_post_data: lower case, cut at the first `;`, `,` or space."""
    return re.split(r"[;, ]", content_type.lower(), maxsplit=1)[0]


def php_multipart(content_type: str, body: bytes) -> dict[str, str]:
    """rfc1867.c: the boundary is after the first "boundary" anywhere in the header, up to
    `,`/`;` (or between quotes); the body is split on `--boundary` lines."""
    at = content_type.find("boundary")
    if at < 0:
        at = content_type.lower().find("boundary")
    rest = content_type[at:].split("=", 1)[1]
    if rest.startswith('"'):
        boundary = rest[1:].split('"', 1)[0]
    else:
        boundary = re.split(r"[,;]", rest, maxsplit=1)[0]
    found: dict[str, str] = {}
    delimiter = b"--" + boundary.encode()
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, value = chunk[2:].partition(b"\r\n\r\n")
        match = re.search(rb'name="([^"]*)"', head)
        if match:
            found[php_name(match.group(1).decode())] = value.removesuffix(b"\r\n").decode()
    return found


def apache_inflate(request: web.Request, body: bytes) -> bytes:
    """Apache httpd's mod_deflate input filter (`SetInputFilter DEFLATE`): trailing `identity`
    tokens of Content-Encoding are dropped and a last `gzip` is inflated."""
    tokens = [t.strip().lower() for t in request.headers.get("Content-Encoding", "").split(",")]
    while tokens and tokens[-1] in ("", "identity"):
        tokens.pop()
    return gzip.decompress(body) if tokens and tokens[-1] == "gzip" else body


async def php_request(request: web.Request) -> dict[str, str]:
    """$_REQUEST with no php.ini: GET, then POST, then COOKIE (each overriding the one before)."""
    get = php_parse_str(request.rel_url.raw_query_string)
    post: dict[str, str] = {}
    if request.method == "POST":
        content_type = request.headers.get("Content-Type", "")
        body = apache_inflate(request, await request.read())
        media = php_media_type(content_type)
        if media == FORM:
            post = php_parse_str(body.decode("utf-8", "replace"))
        elif media == "multipart/form-data":
            post = php_multipart(content_type, body)
    return {**get, **post, **php_cookies(request.headers.getall("Cookie", []))}


def php_app() -> web.Application:
    """DokuWiki's auth_setup: a user name `u` and password `p` in $_REQUEST sign in on any
    request; `do=login` answers with a redirect and the session cookie."""
    sessions: dict[str, str] = {}

    async def doku(request: web.Request) -> web.Response:
        fields = await php_request(request)
        user = sessions.get(request.cookies.get("DokuWiki", ""))
        cookie = None
        if fields.get("u") and USERS.get(fields["u"]) == fields.get("p"):
            cookie = secrets.token_hex(12)
            user = sessions[cookie] = fields["u"]
            if fields.get("do") == "login":
                response = web.Response(status=302, headers={"Location": "/doku.php?id=start"})
                response.set_cookie("DokuWiki", cookie)
                return response
        response = web.Response(text=f"page {fields.get('id')} as {user}")
        if cookie is not None:
            response.set_cookie("DokuWiki", cookie)
        return response

    app = web.Application()
    app.router.add_route("*", "/doku.php", doku)
    return app


@pytest.fixture
async def php() -> AsyncIterator[TestServer]:
    async for server in serve(php_app()):
        yield server


def php_settings(server: TestServer) -> dict[str, Any]:
    intercept = {
        "session_cookies": ["DokuWiki"],
        "login": {"path": "/doku.php", "fields": {"do": "login"}, "username_field": "u"},
        "credentials": {"query": ["u", "p"], "fields": ["u", "p"]},
    }
    return {"app": intercept_app(str(server.make_url("")), intercept=intercept)}


ALICE = "page private as alice@example.com"


async def test_php_credential_fields_after_a_nul_in_the_name_are_refused(
    make_gateway: Any, php: TestServer
) -> None:
    """PHP cuts a request variable's name at its first NUL (`u%00=` is $_REQUEST['u']), so
    the wiki signs in from `u%00`/`p%00` on any request. field_reading does not cut at NUL:
    the body is passed on (and the query string kept) with the victim's password."""
    client = await make_gateway(php_settings(php))
    body = await client.post(
        "/doku.php?id=private",
        data=b"do=show&u%00=alice%40example.com&p%00=alice-pw",
        headers={"Content-Type": FORM},
    )
    assert (body.status, await body.text()) != (200, ALICE)


async def test_php_credential_query_parameters_after_a_nul_in_the_name_are_stripped(
    make_gateway: Any, php: TestServer
) -> None:
    """The same through the query string: without_credentials compares `u\\x00x` with `u`."""
    client = await make_gateway(php_settings(php))
    query = await client.get("/doku.php?id=private&u%00x=alice%40example.com&p%00x=alice-pw")
    assert await query.text() != ALICE


@pytest.mark.parametrize("content_type", [f"{FORM},text/plain", f"{FORM} x", f"{FORM},"])
async def test_php_form_media_type_cut_at_comma_or_space_is_checked(
    make_gateway: Any, php: TestServer, content_type: str
) -> None:
    """PHP's sapi_read_post_data cuts the media type at `;`, `,` or a space, so `FORM,text/plain`
    is a form to it. body_fields.media_type cuts at `;` only, finds no form, and neither the
    login check nor the credential-field check reads the body."""
    client = await make_gateway(php_settings(php))
    answer = await client.post(
        "/doku.php?id=private",
        data=b"do=show&u=alice%40example.com&p=alice-pw",
        headers={"Content-Type": content_type},
    )
    assert (answer.status, await answer.text()) != (200, ALICE)


async def test_php_multipart_boundary_read_as_php_reads_it(
    make_gateway: Any, php: TestServer
) -> None:
    """PHP takes the multipart boundary from the first "boundary" in the header (strstr), the
    `multipart` package from the last `boundary` parameter: the gateway reads one harmless part
    `x`, PHP reads `u` and `p` inside it."""
    client = await make_gateway(php_settings(php))
    inner = (
        b'--AAA\r\nContent-Disposition: form-data; name="u"\r\n\r\nalice@example.com\r\n'
        b'--AAA\r\nContent-Disposition: form-data; name="p"\r\n\r\nalice-pw\r\n--AAA--\r\n'
    )
    body = b'--BBB\r\nContent-Disposition: form-data; name="x"\r\n\r\n' + inner + b"\r\n--BBB--\r\n"
    for content_type in (
        "multipart/form-data; boundary=AAA; boundary=BBB",
        "multipart/form-data; xboundary=AAA; boundary=BBB",
    ):
        answer = await client.post(
            "/doku.php?id=private", data=body, headers={"Content-Type": content_type}
        )
        assert (answer.status, await answer.text()) != (200, ALICE), content_type


async def test_php_gzip_body_behind_apache_deflate_is_checked(
    make_gateway: Any, php: TestServer
) -> None:
    """`Content-Encoding: gzip, identity`: aiohttp inflates only a lone gzip/deflate/br/zstd, so
    the gateway reads the compressed bytes as a form (no field found) and passes them on;
    Apache's mod_deflate input filter drops the identity token and inflates the gzip for PHP."""
    client = await make_gateway(php_settings(php))
    answer = await client.post(
        "/doku.php?id=private",
        data=gzip.compress(b"do=show&u=alice%40example.com&p=alice-pw"),
        headers={"Content-Type": FORM, "Content-Encoding": "gzip, identity"},
    )
    assert (answer.status, await answer.text()) != (200, ALICE)


async def test_php_credentials_in_cookies_never_reach_the_application(
    make_gateway: Any, php: TestServer
) -> None:
    """With no php.ini (request_order unset) $_REQUEST includes $_COOKIE, so cookies `u` and
    `p` sign the wiki in on any request. Only body fields and query parameters are checked."""
    client = await make_gateway(php_settings(php))
    answer = await client.get(
        "/doku.php?id=private", cookies={"u": "alice%40example.com", "p": "alice-pw"}
    )
    assert await answer.text() != ALICE


async def test_php_login_user_name_overridden_by_a_cookie(
    make_gateway: Any, php: TestServer
) -> None:
    """Mallory (her own account, her own second factor) posts the wiki's login naming herself,
    with cookies `u`/`p` holding alice's name and password. PHP's $_REQUEST (no php.ini) takes
    the cookies over the body and signs in alice; without whoami the gateway believes the form,
    asks mallory's second factor and releases alice's session cookie to her."""
    client = await make_gateway(php_settings(php))
    login = await client.post(
        "/doku.php",
        data={"do": "login", "u": "mallory@example.com", "p": "mallory-pw"},
        cookies={"u": "alice%40example.com", "p": "alice-pw"},
        allow_redirects=False,
    )
    if login.status == 303 and login.headers["Location"].startswith("/.gateway/"):
        await enrol_totp(client, login.headers["Location"])
        client.session.cookie_jar.clear(lambda c: c.key in ("u", "p"))
    page = await client.get("/doku.php?id=private")
    assert await page.text() != ALICE


@pytest.mark.parametrize("path", ["/doku.php", "/elsewhere"])
async def test_deeply_nested_json_is_a_400_not_a_500(
    make_gateway: Any, php: TestServer, path: str
) -> None:
    """body_fields catches ValueError from json.loads but not RecursionError: a JSON body of
    100 000 `[` at the login path (login_or_body) or anywhere (credential_fields) is a 500."""
    client = await make_gateway(php_settings(php))
    answer = await client.post(
        path, data=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert 400 <= answer.status < 500


async def test_php_checks_that_hold(make_gateway: Any, php: TestServer) -> None:
    """Pinned: what the checks do catch (PHP's other name readings, the media type with
    parameters, multipart whose boundary both read alike, ambiguous logins)."""
    client = await make_gateway(php_settings(php))
    for body in (b"do=show&u.=x&u=alice%40example.com&p=alice-pw", b"U=a&P=b", b"%20u=a&p[]=b"):
        answer = await client.post(
            "/doku.php?id=x", data=body, headers={"Content-Type": f"{FORM}; charset=utf-8"}
        )
        assert answer.status == 400
    query = await client.get("/doku.php?id=private&U=alice%40example.com&p[x]=alice-pw")
    assert await query.text() == "page private as None"
    # the login with the user name repeated in the query string under PHP's reading
    login = await client.post(
        "/doku.php?%20u=mallory%40example.com",
        data={"do": "login", "u": "alice@example.com", "p": "alice-pw"},
        allow_redirects=False,
    )
    assert login.status == 400
    multipart = (
        b'--B\r\nContent-Disposition: form-data; name="u"\r\n\r\nalice@example.com\r\n--B--\r\n'
    )
    answer = await client.post(
        "/doku.php?id=x",
        data=multipart,
        headers={"Content-Type": "multipart/form-data; boundary=B"},
    )
    assert answer.status == 400


# --- Express / servlet (case-insensitive routes, path parameters, non-rotating sessions) -----


def express_route(path: str) -> str:
    """Express's default router: case-insensitive, a trailing slash ignored."""
    return path.lower().rstrip("/") or "/"


def servlet_route(path: str) -> str:
    """Tomcat/Jetty/Spring: `;name=value` path parameters dropped from every segment."""
    return "/".join(segment.split(";", 1)[0] for segment in path.split("/")) or "/"


def inflate(request: web.Request, body: bytes) -> bytes:
    """body-parser: a gzip or deflate Content-Encoding is inflated before parsing."""
    coding = request.headers.get("Content-Encoding", "identity").lower()
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "deflate":
        return zlib.decompress(body)
    return body


def express_app(route: Callable[[str], str], seen: list[str]) -> web.Application:
    sessions: dict[str, str | None] = {}
    tokens: dict[str, str] = {}

    async def fields(request: web.Request) -> dict[str, Any]:
        body = inflate(request, await request.read())
        if request.content_type == "application/json":
            data = json.loads(body or b"{}")
            return data if isinstance(data, dict) else {}
        return php_parse_str(body.decode("utf-8", "replace"))

    def signed_in(form: dict[str, Any]) -> str | None:
        user = form.get("username") or form.get("u")
        password = form.get("password") or form.get("p")
        return str(user) if user and USERS.get(str(user)) == password else None

    async def handler(request: web.Request) -> web.StreamResponse:
        where = (request.method, route(request.path))
        sid = request.cookies.get("sid", "")
        if where in (("POST", "/login"), ("POST", "/api/login")):
            seen.append(request.path)
            user = signed_in(await fields(request))
            if user is None:
                return web.Response(status=302, headers={"Location": "/login?error=1"})
            if where[1] == "/api/login":
                response: web.Response = web.json_response({"ok": True})
            else:
                response = web.Response(status=302, headers={"Location": "/home"})
            if sid in sessions:  # express-session: the same id, now signed in; no Set-Cookie
                sessions[sid] = user
            else:
                sid = secrets.token_hex(12)
                sessions[sid] = user
                response.set_cookie("sid", sid)
            return response
        if where == ("POST", "/auth/token"):
            seen.append(request.path)
            user = signed_in(await fields(request))
            if user is None:
                return web.json_response({"error": "unauthorized"}, status=401)
            value = secrets.token_hex(8)
            tokens[value] = user
            return web.json_response({"access_token": value})
        if where == ("POST", "/notes"):  # an API that signs in from `u`/`p` on any request
            user = signed_in(await fields(request))
            return web.Response(text=f"notes of {user}")
        if where == ("GET", "/me"):
            auth = request.headers.get("Authorization", "").removeprefix("Bearer ")
            user = sessions.get(sid) or tokens.get(auth)
            return web.json_response({"user": user}, status=200 if user else 401)
        if where == ("GET", "/home"):
            return web.Response(text=f"home of {sessions.get(sid)}")
        return web.Response(text="login page")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@pytest.fixture
async def express() -> AsyncIterator[tuple[TestServer, list[str]]]:
    seen: list[str] = []
    async for server in serve(express_app(express_route, seen)):
        yield server, seen


@pytest.fixture
async def servlet() -> AsyncIterator[tuple[TestServer, list[str]]]:
    seen: list[str] = []
    async for server in serve(express_app(servlet_route, seen)):
        yield server, seen


def express_settings(server: TestServer, **intercept: Any) -> dict[str, Any]:
    config = {
        "session_cookies": ["sid"],
        "login": {"path": "/login"},
        "whoami": {"path": "/me", "json": "user"},
        **intercept,
    }
    return {"app": intercept_app(str(server.make_url("")), intercept=config)}


def token_settings(server: TestServer) -> dict[str, Any]:
    return express_settings(
        server,
        session_cookies=[],
        login={"path": "/auth/token", "token": "access_token"},
        credentials={"query": ["access_token"]},
    )


@pytest.mark.parametrize(
    ("flavour", "path"),
    [("express", "/AUTH/TOKEN"), ("express", "/Auth/Token/"), ("servlet", "/auth/token;x=1")],
)
async def test_a_token_login_at_a_path_variant_hands_out_no_token(
    make_gateway: Any,
    express: tuple[TestServer, list[str]],
    servlet: tuple[TestServer, list[str]],
    flavour: str,
    path: str,
) -> None:
    """Express routes case-insensitively, servlets drop `;` path parameters: the application
    answers its token login at `/AUTH/TOKEN` or `/auth/token;x=1`, which is_login_target (exact,
    case-sensitive comparison of the normalised path) does not take for the login. The token is
    relayed to whoever sent the password, before any second factor, and the login is not
    regulated (no counted failures, no lockout)."""
    server, _ = express if flavour == "express" else servlet
    client = await make_gateway(token_settings(server))
    answer = await client.post(path, data={"username": "alice@example.com", "password": "alice-pw"})
    assert "access_token" not in await answer.text()


@pytest.mark.parametrize(
    ("flavour", "path"), [("express", "/LOGIN"), ("servlet", "/login;jsessionid=0")]
)
async def test_a_login_at_a_path_variant_is_the_login(
    make_gateway: Any,
    express: tuple[TestServer, list[str]],
    servlet: tuple[TestServer, list[str]],
    flavour: str,
    path: str,
) -> None:
    """The same variants with a cookie login: the gateway takes them as the login, so wrong
    passwords there are read, counted and regulated like those at the named path."""
    server, seen = express if flavour == "express" else servlet
    client = await make_gateway(express_settings(server))
    statuses = []
    for _ in range(7):
        answer = await client.post(
            path,
            data={"username": "alice@example.com", "password": "wrong"},
            allow_redirects=False,
        )
        statuses.append(answer.status)
    assert statuses[-1] == 429, statuses  # counted as the login's wrong passwords are
    assert len(seen) < 7


async def test_a_verified_user_cannot_become_another_through_a_session_that_keeps_its_id(
    make_gateway: Any, express: tuple[TestServer, list[str]]
) -> None:
    """Mallory signs in as herself (second factor and all; her `sid` is bound). She then posts
    alice's password to a second login endpoint the settings do not name. express-session
    keeps the same session id, so there is no Set-Cookie: _hold_app_cookies never asks whoami,
    and mallory's bound cookie now signs alice in. whoami cannot see a login that changes no
    cookie: the settings list the login's fields under credentials.fields (docs/intercept.md), which
    refuses them, and the user-name field, everywhere but the named login."""
    server, _ = express
    client = await make_gateway(express_settings(server, credentials={"fields": ["password"]}))
    await mallory_verified(client)
    assert await (await client.get("/home")).text() == "home of mallory@example.com"
    await client.post("/api/login", json={"username": "alice@example.com", "password": "alice-pw"})
    assert await (await client.get("/home")).text() != "home of alice@example.com"


async def test_gzip_encoded_credential_fields_are_checked(
    make_gateway: Any, express: tuple[TestServer, list[str]]
) -> None:
    """body-parser inflates a gzip (or deflate) request body; credential_fields reads the
    compressed bytes as text, finds no field and passes the body on."""
    server, _ = express
    client = await make_gateway(express_settings(server, credentials={"fields": ["u", "p"]}))
    plain = await client.post("/notes", data={"u": "alice@example.com", "p": "alice-pw"})
    assert plain.status == 400  # pinned: the plain body is refused
    answer = await client.post(
        "/notes",
        data=gzip.compress(b"u=alice%40example.com&p=alice-pw"),
        headers={"Content-Type": FORM, "Content-Encoding": "gzip"},
    )
    assert await answer.text() != "notes of alice@example.com"


async def test_a_gzip_login_body_is_read_inflated_and_sent_on_plain(
    make_gateway: Any, express: tuple[TestServer, list[str]]
) -> None:
    """A compressed login is refused, not forwarded: the gateway's edge does not inflate request
    bodies (it forwards them as sent), and what it cannot read it cannot vouch for."""
    server, seen = express
    client = await make_gateway(express_settings(server))
    answer = await client.post(
        "/login",
        data=gzip.compress(b"username=alice%40example.com&password=alice-pw"),
        headers={"Content-Type": FORM, "Content-Encoding": "gzip"},
        allow_redirects=False,
    )
    assert answer.status == 400
    assert seen == []


async def test_a_verified_user_signing_in_as_another_at_the_named_login_is_asked_again(
    make_gateway: Any, express: tuple[TestServer, list[str]]
) -> None:
    """Pinned (_again): mallory, verified, posts alice's password to the named login. The
    answer is not passed through; she is sent to alice's second factor and her own session
    ends, so no cookie of alice is bound to her."""
    server, _ = express
    client = await make_gateway(express_settings(server))
    await mallory_verified(client)
    again = await client.post(
        "/login",
        data={"username": "alice@example.com", "password": "alice-pw"},
        allow_redirects=False,
    )
    assert again.status == 303 and again.headers["Location"].startswith("/.gateway/")
    assert await (await client.get("/home")).text() != "home of alice@example.com"


async def test_a_stolen_sid_is_refused_under_every_spelling(
    make_gateway: Any, express: tuple[TestServer, list[str]]
) -> None:
    """Pinned: alice's own `sid` value (taken from her browser) gets nothing, under another
    case, percent-encoded, after a comma, duplicated, or next to mallory's verified session."""
    server, _ = express
    client = await make_gateway(express_settings(server))
    async with client.session.post(
        server.make_url("/login"),
        data={"username": "alice@example.com", "password": "alice-pw"},
        allow_redirects=False,
    ) as direct:
        stolen = direct.cookies["sid"].value
    client.session.cookie_jar.clear()
    for header in (
        f"sid={stolen}",
        f"SID={stolen}",
        f"s%69d={stolen}",
        f"x=1, sid={stolen}",
        f"x=1 sid={stolen}",
    ):
        answer = await raw_get(client, "/home", header)
        assert answer == 403, header
    await mallory_verified(client)
    mine = next(m.value for m in client.session.cookie_jar if m.key == "sid")
    gateway = next(m.value for m in client.session.cookie_jar if m.key == "gateway_session")
    assert await raw_get(client, "/home", f"gateway_session={gateway}; sid={mine}") == 200
    for header in (f"sid={stolen}", f"sid={mine}; sid={stolen}", f"sid={mine}; SID={stolen}"):
        answer = await raw_get(client, "/home", f"gateway_session={gateway}; {header}")
        assert answer == 403, header


async def test_a_token_from_the_password_alone_is_never_sent_on(
    make_gateway: Any, express: tuple[TestServer, list[str]]
) -> None:
    """Pinned: alice's token, had straight from the application, is stripped for a verified
    mallory too, under header variants (`authorization` in any case, duplicated) and query
    variants (`ACCESS_TOKEN`, `access.token`, percent-encoded)."""
    server, _ = express
    client = await make_gateway(token_settings(server))
    async with client.session.post(
        server.make_url("/auth/token"),
        data={"username": "alice@example.com", "password": "alice-pw"},
    ) as direct:
        stolen = (await direct.json())["access_token"]
    await mallory_verified(client, "/auth/token")
    for query in ("access_token", "ACCESS_TOKEN", "access.token", "access%5Ftoken"):
        answer = await client.get(f"/me?{query}={stolen}")
        assert answer.status == 401, query
    answer = await client.get("/me", headers={"authorization": f"bearer {stolen}"})
    assert answer.status == 401


# --- Rack 2 (Rails): `;` separates query parameters ------------------------------------------


def rack_app() -> web.Application:
    keys = {"key-alice": "alice@example.com"}

    async def api(request: web.Request) -> web.Response:
        params = dict(
            pair.partition("=")[::2]
            for pair in re.split(r"[&;] *", request.rel_url.raw_query_string)
            if pair
        )
        return web.Response(text=f"api as {keys.get(unquote_plus(params.get('api_key', '')))}")

    app = web.Application()
    app.router.add_get("/api", api)
    return app


@pytest.fixture
async def rack() -> AsyncIterator[TestServer]:
    async for server in serve(rack_app()):
        yield server


async def test_a_credential_query_parameter_after_a_semicolon_is_stripped(
    make_gateway: Any, rack: TestServer
) -> None:
    """Rack 2 (and Python's parse_qs before 3.9.2, Perl's CGI) split a query string on `;` as
    well as `&`; without_credentials splits on `&` only, so `?page=1;api_key=...` keeps the
    credential. (login_body._check_query and query_fields do treat `;` as a separator.)"""
    intercept = {
        "session_cookies": ["_app_session"],
        "login": {"path": "/session", "username_field": "email"},
        "whoami": {"path": "/me", "json": "user"},
        "credentials": {"query": ["api_key"]},
    }
    client = await make_gateway({"app": intercept_app(str(rack.make_url("")), intercept=intercept)})
    assert await (await client.get("/api?api_key=key-alice")).text() == "api as None"
    answer = await client.get("/api?page=1;api_key=key-alice")
    assert await answer.text() == "api as None"


# --- Rails: ParamsWrapper and a nested JSON login --------------------------------------------


def rails_app() -> web.Application:
    sessions: dict[str, str] = {}

    async def create(request: web.Request) -> web.Response:
        params = await request.json()
        if "session" not in params:  # ParamsWrapper: wrap only when the key is not there yet
            params["session"] = {k: params[k] for k in ("email", "password") if k in params}
        wrapped = params["session"] if isinstance(params["session"], dict) else {}
        user = wrapped.get("email")
        if not user or USERS.get(user) != wrapped.get("password"):
            return web.Response(status=302, headers={"Location": "/session/new"})
        sid = secrets.token_hex(12)
        sessions[sid] = user
        response = web.Response(status=302, headers={"Location": "/dashboard"})
        response.set_cookie("_app_session", sid)
        return response

    async def dashboard(request: web.Request) -> web.Response:
        return web.Response(
            text=f"dashboard of {sessions.get(request.cookies.get('_app_session', ''))}"
        )

    app = web.Application()
    app.router.add_post("/session", create)
    app.router.add_get("/dashboard", dashboard)
    return app


@pytest.fixture
async def rails() -> AsyncIterator[TestServer]:
    async for server in serve(rails_app()):
        yield server


async def test_a_json_login_with_a_nested_object_is_refused(
    make_gateway: Any, rails: TestServer
) -> None:
    """Mallory (her own account and second factor) posts a JSON login whose top-level `email`
    and `password` are hers, and whose `session` object holds alice's. Rails' ParamsWrapper does
    not wrap a body that already has the `session` key, so the controller signs in alice; the
    gateway (no whoami) reads the top-level `email`, asks mallory's second factor and releases
    alice's session cookie. read_login accepts nested objects in a login."""
    intercept = {
        "session_cookies": ["_app_session"],
        "login": {"path": "/session", "username_field": "email"},
    }
    client = await make_gateway(
        {"app": intercept_app(str(rails.make_url("")), intercept=intercept)}
    )
    login = await client.post(
        "/session",
        json={
            "email": "mallory@example.com",
            "password": "mallory-pw",
            "session": {"email": "alice@example.com", "password": "alice-pw"},
        },
        allow_redirects=False,
    )
    if login.status == 303 and login.headers["Location"].startswith("/.gateway/"):
        await enrol_totp(client, login.headers["Location"])
    page = await client.get("/dashboard")
    assert await page.text() != "dashboard of alice@example.com"
