"""DokuWiki (Debian's package, run by `php -S`) behind the gateway in intercept mode: the whole
sign-in with its own login form, and the ways past the second factor a PHP application offers.

DokuWiki's quirks that matter here (tests/compat/NOTES-php-spa.md has the details):
- its login form posts to /doku.php?id=PAGE with `do=login` in the body, not in the query;
- any request to any of its PHP entry points signs in from `u` and `p` (query or body), and from
  `Authorization: Basic`, not only the login;
- its PHP session cookie `DokuWiki` is set on the first page view, so also on a failed login, and
  is not renewed on login: the signed-in state needs that pre-login cookie together with the
  `DW` + md5(base path + port) cookie the login sets;
- user names are page names: "ALICE.", "alicé" and " alice" all sign in `alice`;
- PHP reads a body as a form when its Content-Type, cut at `;`, `,` or a space, names one.

Behind the gateway: `login.fields: {do: login}` makes the browser's own form the login,
`credentials.fields: [u, p]` refuses u and p in any other body, `credentials.query` strips them
from queries, `logout.query: {do: logout}` tells DokuWiki's sign-out from a page view.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientSession, CookieJar, FormData

from tests.compat import app_php
from tests.compat.app_php import PRIVATE_TEXT, USERS, WHOAMI, DokuWiki, auth_cookie_name
from tests.support import code_for, csrf_from_page, secret_from_page

pytestmark = pytest.mark.compat

Client = Any  # aiohttp's TestClient
ALICE = ("alice", USERS["alice"][0])
BOB = ("bob", USERS["bob"][0])
POLICIES = {
    "wiki.yaml": ("company: Wiki Company\nmembers:\n  users: [alice, bob]\nenforce_2fa: true\n")
}
LOGIN_FORM = re.compile(r'<form id="dw__login" action="([^"]*)"(.*?)</form>', re.S)
EDIT_FORM = re.compile(r'<form id="dw__editform" action="([^"]*)"(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
SIGNED_IN = re.compile(WHOAMI)


@pytest.fixture(scope="session")
def dokuwiki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DokuWiki]:
    """One DokuWiki for the session, on a free port, with its own configuration and data."""
    try:
        app_php.ensure_installed()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    wiki = DokuWiki.start(tmp_path_factory.mktemp("dokuwiki"))
    yield wiki
    wiki.stop()


def wiki_app(wiki: DokuWiki, **intercept: Any) -> dict[str, Any]:
    """DokuWiki's intercept settings (tests/compat/NOTES-php-spa.md explains each)."""
    settings: dict[str, Any] = {
        # DokuWiki's form posts to /doku.php?id=PAGE with do=login in the body
        "login": {
            "path": "/doku.php",
            "method": "POST",
            "fields": {"do": "login"},
            "username_field": "u",
            "success": {"status": [302]},
        },
        "session_cookies": ["DokuWiki", "DW*"],
        "whoami": {"path": "/doku.php?id=start", "pattern": WHOAMI},
        # every page view is GET /doku.php: only do=logout in the query is the sign-out
        "logout": {"path": "/doku.php", "methods": ["GET"], "query": {"do": "logout"}},
        # DokuWiki signs in from u and p on any request, in the query or the body
        "credentials": {"query": ["u", "p"], "fields": ["u", "p"]},
    }
    settings.update(intercept)
    return {
        "upstream": wiki.url,
        "hosts": ["*"],
        "identity": "intercept",
        "intercept": settings,
    }


async def gateway(make_gateway: Any, wiki: DokuWiki, **intercept: Any) -> Client:
    return await make_gateway({"wiki": wiki_app(wiki, **intercept)}, policies=POLICIES)


def signed_in_as(page: str) -> str | None:
    match = SIGNED_IN.search(page)
    return match.group(1) if match else None


def form_fields(form_html: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(form_html)}


async def login_form(client: Client, page: str = "start") -> tuple[str, dict[str, str]]:
    """DokuWiki's login page as a browser gets it: the form's action and hidden fields."""
    answer = await client.get(f"/doku.php?id={page}&do=login")
    assert answer.status == 200
    match = LOGIN_FORM.search(await answer.text())
    assert match, "DokuWiki's login form"
    return html.unescape(match.group(1)), form_fields(match.group(2))


async def wiki_login(client: Client, user: str, password: str, *, remember: bool = False) -> Any:
    """Sign in on DokuWiki's form exactly as a browser sends it: to the form's action
    (/doku.php?id=start), with its hidden `sectok`, `id` and `do=login` and the user's `u`, `p`
    (and `r` for "Remember me") in the body."""
    action, fields = await login_form(client)
    assert action == "/doku.php?id=start" and fields.get("do") == "login", (action, fields)
    fields.update(u=user, p=password)
    if remember:
        fields["r"] = "1"
    return await client.post(action, data=fields, allow_redirects=False)


async def enrol(client: Client, location: str) -> tuple[str, Any]:
    page = await client.get(location)
    text = await page.text()
    secret = secret_from_page(text)
    done = await client.post(
        location,
        data={"csrf_token": csrf_from_page(text), "code": code_for(secret)},
        allow_redirects=False,
    )
    return secret, done


async def signed_in(client: Client, user: tuple[str, str] = ALICE) -> str:
    """Password on DokuWiki's form, then enrolment; returns the TOTP secret."""
    login = await wiki_login(client, *user)
    assert login.status == 303, await login.text()
    assert login.headers["Location"].startswith("/.gateway/enrol")
    secret, done = await enrol(client, login.headers["Location"])
    assert done.status == 303
    return secret


@asynccontextmanager
async def another_browser(client: Client) -> AsyncIterator[ClientSession]:
    """A second browser (its own cookies) on the same gateway."""
    base = str(client.make_url("/"))
    async with ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True)) as browser:
        yield browser


def cookie(client: Client, name: str) -> str | None:
    jar = client.cookie_jar if isinstance(client, ClientSession) else client.session.cookie_jar
    for morsel in jar:
        if morsel.key == name:
            return str(morsel.value)
    return None


async def who(client: Client, page: str = "start") -> str | None:
    answer = await client.get(f"/doku.php?id={page}", allow_redirects=False)
    return signed_in_as(await answer.text())


async def direct_cookies(wiki: DokuWiki, user: tuple[str, str] = ALICE) -> dict[str, str]:
    """A signed-in cookie pair got from DokuWiki itself, not through the gateway (what an
    attacker who stole them, or who knows the password and reaches DokuWiki, holds)."""
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as direct:
        await direct.get(f"{wiki.url}/doku.php?id=start&do=login")
        await direct.post(
            f"{wiki.url}/doku.php?id=start",
            data={"do": "login", "u": user[0], "p": user[1], "id": "start"},
            allow_redirects=False,
        )
        jar = {morsel.key: str(morsel.value) for morsel in direct.cookie_jar}
        page = await direct.get(f"{wiki.url}/doku.php?id=start")
        assert signed_in_as(await page.text()) == user[0], "the cookies sign in directly"
    assert set(jar) == {"DokuWiki", wiki.auth_cookie}
    return jar


def unique_page() -> str:
    return f"compat:page{secrets.token_hex(4)}"


# --- the whole flow ------------------------------------------------------------------------


async def test_sign_in_enrol_edit_and_use_the_wiki(make_gateway: Any, dokuwiki: DokuWiki) -> None:
    """DokuWiki's password, then enrolment, then DokuWiki's own cookies released: the wiki shows
    alice signed in, saves her edit, and answers its XHR API for her."""
    client = await gateway(make_gateway, dokuwiki)
    await login_form(client)
    assert cookie(client, "DokuWiki") is None, "the pre-login PHP session stays at the gateway"
    login = await wiki_login(client, *ALICE)
    assert login.status == 303, await login.text()
    assert login.headers["Location"] == "/.gateway/enrol?rd=%2Fdoku.php%3Fid%3Dstart"
    assert cookie(client, dokuwiki.auth_cookie) is None
    assert await who(client) is None, "between the password and the code: not signed in"
    _, done = await enrol(client, login.headers["Location"])
    assert done.status == 303
    assert done.headers["Location"] == "/doku.php?id=start"
    assert cookie(client, dokuwiki.auth_cookie) is not None
    assert cookie(client, "DokuWiki") is not None, "the session the DW cookie is bound to"
    assert await who(client) == "alice"
    assert PRIVATE_TEXT in await (await client.get("/doku.php?id=private:plans")).text()

    page = unique_page()
    editor = await client.get(f"/doku.php?id={page}&do=edit")
    match = EDIT_FORM.search(await editor.text())
    assert match, "DokuWiki's edit form"
    fields = form_fields(match.group(2))
    assert fields["sectok"], "a CSRF token for alice's session"
    fields.update(
        {"wikitext": "Written through the gateway.", "summary": "compat", "do[save]": "1"}
    )
    saved = await client.post(html.unescape(match.group(1)), data=fields, allow_redirects=False)
    assert saved.status in (302, 303), await saved.text()
    shown = await (await client.get(f"/doku.php?id={page}")).text()
    assert "Written through the gateway." in shown
    assert signed_in_as(shown) == "alice"

    xhr = await client.post(
        "/lib/exe/ajax.php",
        data={"call": "index", "idx": "private"},
        headers={"X-Requested-With": "XMLHttpRequest"},
    )
    assert "private:plans" in await xhr.text()


async def test_dokuwikis_own_form_is_the_login(make_gateway: Any, dokuwiki: DokuWiki) -> None:
    """DokuWiki's form exactly as a browser sends it (to /doku.php?id=start, with `sectok`, `id`,
    `do=login`, `u`, `p` in the body: `id` is in the query too, with the same value) is the
    login (login.fields) and leads to the second factor; so is the same login with `do=login`
    in the query. An `id` in the query other than the body's is ambiguous: refused."""
    client = await gateway(make_gateway, dokuwiki)
    login = await wiki_login(client, *ALICE)
    assert login.status == 303, f"{login.status}: {await login.text()}"
    assert login.headers["Location"].startswith("/.gateway/enrol")
    assert cookie(client, dokuwiki.auth_cookie) is None

    async with another_browser(client) as other:
        body = {"sectok": "", "u": "alice", "p": ALICE[1]}
        login = await other.post("/doku.php?id=start&do=login", data=body, allow_redirects=False)
        assert login.status == 303, f"{login.status}: {await login.text()}"
        assert login.headers["Location"].startswith("/.gateway/enrol")

    async with another_browser(client) as third:
        body = {"sectok": "", "id": "private:plans", "do": "login", "u": "alice", "p": ALICE[1]}
        login = await third.post("/doku.php?id=start", data=body, allow_redirects=False)
        assert login.status == 400, await login.text()
        await not_signed_in(third, dokuwiki)


async def test_remember_me_cookie_alone_signs_in_after_the_code(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """With "Remember me" DokuWiki's DW cookie lasts a year and needs no PHP session; it too
    waits for the second factor."""
    client = await gateway(make_gateway, dokuwiki)
    login = await wiki_login(client, *ALICE, remember=True)
    assert login.status == 303
    assert cookie(client, dokuwiki.auth_cookie) is None
    _, done = await enrol(client, login.headers["Location"])
    assert done.status == 303
    lines = done.headers.getall("Set-Cookie")
    assert any(line.startswith(dokuwiki.auth_cookie + "=") and "Max-Age" in line for line in lines)
    assert await who(client) == "alice"


async def test_logout_ends_the_gateway_session_and_the_code_is_asked_again(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """DokuWiki's logout (GET do=logout with its sectok, logout.query) ends the gateway session
    too, the browser lands on DokuWiki's login page, the next login goes to the challenge, and
    the old cookies are worth nothing."""
    client = await gateway(make_gateway, dokuwiki)
    secret = await signed_in(client)
    page = await (await client.get("/doku.php?id=start")).text()
    token = re.search(r"do=logout&amp;sectok=([0-9a-f]+)", page)
    assert token, "the logout link"
    assert await who(client) == "alice", "a plain page view is no logout"
    old = {name: cookie(client, name) for name in ("gateway_session", "DokuWiki")}
    old[dokuwiki.auth_cookie] = cookie(client, dokuwiki.auth_cookie)
    logout = await client.get(
        f"/doku.php?id=start&do=logout&sectok={token.group(1)}", allow_redirects=False
    )
    assert logout.status == 302
    assert any(line.startswith("gateway_session=;") for line in logout.headers.getall("Set-Cookie"))
    landing = await client.get(urlsplit(logout.headers["Location"]).path + "?id=start&do=login")
    assert landing.status == 200, "after the logout the browser gets DokuWiki's login page"
    assert LOGIN_FORM.search(await landing.text())
    assert await who(client) is None

    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as replay:
        header = "; ".join(f"{name}={value}" for name, value in old.items())
        again = await replay.get(client.make_url("/doku.php?id=start"), headers={"Cookie": header})
        assert signed_in_as(await again.text()) is None

    login = await wiki_login(client, *ALICE)
    assert login.status == 303
    location = login.headers["Location"]
    assert location.startswith("/.gateway/challenge")
    challenge = await client.get(location)
    done = await client.post(
        location,
        data={
            "csrf_token": csrf_from_page(await challenge.text()),
            "code": code_for(secret, offset_steps=1),
        },
        allow_redirects=False,
    )
    assert done.status == 303
    assert await who(client) == "alice"


# --- attacks -------------------------------------------------------------------------------


async def not_signed_in(client: Client, wiki: DokuWiki) -> None:
    """Neither the browser nor DokuWiki holds a session for anyone."""
    assert cookie(client, wiki.auth_cookie) is None
    page = await client.get("/doku.php?id=private:plans", allow_redirects=False)
    text = await page.text()
    assert signed_in_as(text) is None
    assert PRIVATE_TEXT not in text


async def test_utf16_form_is_refused(make_gateway: Any, dokuwiki: DokuWiki) -> None:
    """A login form declared as UTF-16LE is refused unread and never reaches DokuWiki; the
    browser's shape (do=login in the body only) signs nobody in either."""
    client = await gateway(make_gateway, dokuwiki)
    utf16 = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-16le"}
    body = f"sectok=&id=start&do=login&u=alice&p={ALICE[1]}".encode("utf-16le")
    answer = await client.post(
        "/doku.php?id=start&do=login", data=body, headers=utf16, allow_redirects=False
    )
    assert answer.status == 400
    answer = await client.post(
        "/doku.php?id=start", data=body, headers=utf16, allow_redirects=False
    )
    assert answer.status in (200, 400, 403), answer.status
    assert signed_in_as(await answer.text()) is None
    await not_signed_in(client, dokuwiki)


async def test_json_without_content_type_is_refused(make_gateway: Any, dokuwiki: DokuWiki) -> None:
    """A body without Content-Type (PHP fills no $_POST from it, so DokuWiki reads `u` and `p`
    from the query) is refused, whatever it holds."""
    client = await gateway(make_gateway, dokuwiki)
    for query, body in (
        ("id=start&do=login", b'{"u": "alice", "p": "%s"}' % ALICE[1].encode()),
        (f"id=start&do=login&u=alice&p={ALICE[1]}", b"u=bob&p=whatever"),
    ):
        answer = await client.post(
            f"/doku.php?{query}",
            data=body,
            headers={"Content-Type": ""},
            skip_auto_headers=["Content-Type"],
            allow_redirects=False,
        )
        assert answer.status == 400, query
    await not_signed_in(client, dokuwiki)


async def test_user_name_in_the_query_with_a_decoy_in_the_body_is_refused(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """`u` in the query string and another `u` in the body (PHP's $_REQUEST takes the body's;
    other stacks the query's) is ambiguous: refused, nobody enrols, nobody is signed in. With
    do=login in the query, and in the body as DokuWiki's form sends it."""
    client = await gateway(make_gateway, dokuwiki)
    form = {"sectok": "", "id": "start", "do": "login"}
    for query, body in (
        ("id=start&do=login&u=alice", {"u": "bob", "p": BOB[1]}),
        ("id=start&do=login&u=bob", {"u": "alice", "p": ALICE[1]}),
        (f"id=start&do=login&u=alice&p={ALICE[1]}", {"sectok": ""}),
        ("id=start&do=login&U=alice", {"u": "bob", "p": BOB[1]}),
        ("id=start&u=alice", {**form, "u": "bob", "p": BOB[1]}),
        ("id=start&u%5B%5D=alice", {**form, "u": "bob", "p": BOB[1]}),
        (f"id=start&u=alice&p={ALICE[1]}", form),
    ):
        answer = await client.post(f"/doku.php?{query}", data=body, allow_redirects=False)
        assert answer.status == 400, query
    await not_signed_in(client, dokuwiki)


async def test_user_and_password_on_another_request_do_not_sign_in(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """DokuWiki signs in from `u` and `p` on any request (a page view, a POST without
    do=login, its XHR endpoint); without the second factor none of them shows alice's wiki:
    the query's are stripped, a body's are refused (credentials.fields), before and after the
    second factor."""
    client = await gateway(make_gateway, dokuwiki)
    page = await client.get(f"/doku.php?id=private:plans&u=alice&p={ALICE[1]}")
    assert signed_in_as(await page.text()) is None, "credentials in the query"
    page = await client.post(
        "/doku.php?id=private:plans", data={"u": "alice", "p": ALICE[1]}, allow_redirects=False
    )
    assert page.status == 400, "credentials in a POST body"
    text = await page.text()
    assert signed_in_as(text) is None and PRIVATE_TEXT not in text
    xhr = await client.post(
        "/lib/exe/ajax.php", data={"call": "index", "idx": "private", "u": "alice", "p": ALICE[1]}
    )
    assert xhr.status == 400, "credentials sent to the XHR endpoint"
    assert "private:plans" not in await xhr.text()
    login_elsewhere = {"do": "login", "u": "alice", "p": ALICE[1]}
    for path in ("/lib/exe/ajax.php", "/feed.php", "/doku.php/start"):
        answer = await client.post(path, data=login_elsewhere, allow_redirects=False)
        assert answer.status == 400, path
    multipart = FormData({"id": "private:plans", "u": "alice", "p": ALICE[1]})
    multipart.add_field("file", b"x", filename="x.txt")  # forces multipart/form-data
    answer = await client.post("/doku.php?id=private:plans", data=multipart)
    assert answer.status == 400, "credentials in a multipart body"
    await not_signed_in(client, dokuwiki)

    await signed_in(client, BOB)
    answer = await client.post(
        "/doku.php?id=private:plans", data={"u": "alice", "p": ALICE[1]}, allow_redirects=False
    )
    assert answer.status == 400, "alice's password from bob's verified session"
    assert await who(client) == "bob"


@pytest.mark.parametrize(
    "content_type",
    [
        # PHP (main/SAPI.c) cuts the media type at ';', ',' or ' ' and lower-cases it: each of
        # these is a form to PHP, and DokuWiki signs in from its u and p
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded",
        "application/x-www-form-urlencoded,text/plain",
        "application/x-www-form-urlencoded text/plain",
    ],
)
async def test_credentials_in_a_body_php_reads_as_a_form_are_refused(
    make_gateway: Any, dokuwiki: DokuWiki, content_type: str
) -> None:
    """A body with `u` and `p` under any Content-Type PHP reads as a form is refused (or at
    least never shows alice's wiki) without the second factor."""
    client = await gateway(make_gateway, dokuwiki)
    body = f"u=alice&p={ALICE[1]}".encode()
    answer = await client.post(
        "/doku.php?id=private:plans",
        data=body,
        headers={"Content-Type": content_type},
        allow_redirects=False,
    )
    text = await answer.text()
    assert PRIVATE_TEXT not in text, f"{content_type}: the password alone read the wiki"
    assert signed_in_as(text) is None
    assert answer.status == 400, answer.status


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=compat",
        "multipart/form-data,boundary=compat",
        "multipart/form-data boundary=compat",
    ],
)
async def test_credentials_in_a_multipart_body_php_reads_are_refused(
    make_gateway: Any, dokuwiki: DokuWiki, content_type: str
) -> None:
    """The same with a multipart body (PHP finds the boundary anywhere in the header)."""
    client = await gateway(make_gateway, dokuwiki)
    parts = [("u", "alice"), ("p", ALICE[1])]
    body = "".join(
        f'--compat\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in parts
    )
    answer = await client.post(
        "/doku.php?id=private:plans",
        data=(body + "--compat--\r\n").encode(),
        headers={"Content-Type": content_type},
        allow_redirects=False,
    )
    text = await answer.text()
    assert PRIVATE_TEXT not in text, f"{content_type}: the password alone read the wiki"
    assert signed_in_as(text) is None
    assert answer.status == 400, answer.status


async def test_variant_spellings_of_a_user_name_do_not_skip_the_code(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """DokuWiki signs in `alice` for "ALICE.", " alice" and "alicé": none of them enrols a new
    second factor beside alice's or reaches the wiki without alice's code."""
    client = await gateway(make_gateway, dokuwiki)
    await signed_in(client)
    await client.post("/.gateway/logout", data={"csrf_token": await _logout_token(client)})
    for spelling in ("ALICE.", " alice", "alic\u00e9", "alice:"):
        answer = await wiki_login(client, spelling, ALICE[1])
        location = answer.headers.get("Location", "")
        assert not location.startswith("/.gateway/enrol"), spelling
        assert await who(client) is None, spelling


async def _logout_token(client: Client) -> str:
    return csrf_from_page(await (await client.get("/.gateway/logout")).text())


async def test_wrong_password_does_not_lead_to_enrolment(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """DokuWiki answers a wrong password with 403 and (on a first visit) a new PHP session
    cookie: the gateway shows DokuWiki's page, starts no second factor, releases nothing."""
    client = await gateway(make_gateway, dokuwiki)
    for first_visit in (True, False):
        if first_visit:  # no login page before: DokuWiki's answer starts the PHP session
            answer = await client.post(
                "/doku.php?id=start",
                data={"sectok": "", "id": "start", "do": "login", "u": "alice", "p": "wrong"},
                allow_redirects=False,
            )
        else:
            answer = await wiki_login(client, "alice", "wrong")
        assert answer.status == 403
        assert "username or password was wrong" in await answer.text()
        assert "Location" not in answer.headers
        assert cookie(client, "DokuWiki") is None
        enrol_page = await client.get("/.gateway/enrol", allow_redirects=False)
        assert enrol_page.status != 200 or "data-secret" not in await enrol_page.text()
    await not_signed_in(client, dokuwiki)


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("DokuWiki", "{dw}"), id="exact"),
        pytest.param(("dokuwiki", "{dw}"), id="lower-case-session"),
        pytest.param(("DOKUWIKI", "{DW}"), id="upper-case"),
        pytest.param(("Doku.Wiki", "{dw}"), id="php-dot"),
        pytest.param(("DokuWiki", "{dw_other_port}"), id="dw-for-another-port"),
        pytest.param(("DokuWiki%20", "{dw}"), id="percent-space"),
        pytest.param((" DokuWiki", "{dw}"), id="leading-space"),
    ],
)
async def test_stolen_cookies_under_any_name_are_refused(
    make_gateway: Any, dokuwiki: DokuWiki, names: tuple[str, str]
) -> None:
    """DokuWiki's signed-in cookies, sent without a gateway session under their own names or
    any name PHP or the gateway may read alike, never sign anyone in; the exact names are
    refused by the gateway."""
    stolen = await direct_cookies(dokuwiki)
    client = await gateway(make_gateway, dokuwiki)
    other_port = auth_cookie_name(dokuwiki.port + 1)
    dw = dokuwiki.auth_cookie
    spelled = {
        "{dw}": dw,
        "{DW}": dw.upper(),
        "{dw_other_port}": other_port,
    }
    session_name, auth_name = names[0], spelled[names[1]]
    header = f"{session_name}={stolen['DokuWiki']}; {auth_name}={stolen[dw]}"
    for host in (None, "LOCALHOST", f"localhost:{dokuwiki.port}"):
        headers = {"Cookie": header}
        if host:
            headers["Host"] = host
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as thief:
            answer = await thief.get(client.make_url("/doku.php?id=private:plans"), headers=headers)
            text = await answer.text()
            assert signed_in_as(text) is None, (host, header)
            assert PRIVATE_TEXT not in text
            if names == ("DokuWiki", "{dw}"):
                assert answer.status == 403


async def test_cookies_stolen_from_another_session_are_refused(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """Bob's verified gateway session does not vouch for alice's DokuWiki cookies."""
    stolen = await direct_cookies(dokuwiki)
    client = await gateway(make_gateway, dokuwiki)
    await signed_in(client, BOB)
    assert await who(client) == "bob"
    jar = client.session.cookie_jar
    jar.update_cookies(stolen, client.make_url("/"))
    answer = await client.get("/doku.php?id=start", allow_redirects=False)
    assert answer.status == 403
    assert signed_in_as(await answer.text()) is None


async def test_authorization_headers_do_not_reach_dokuwiki(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """DokuWiki signs in from `Authorization: Basic` on any request; without a verified gateway
    session neither Basic nor Bearer reaches it."""
    import base64

    client = await gateway(make_gateway, dokuwiki)
    basic = base64.b64encode(f"alice:{ALICE[1]}".encode()).decode()
    for value in (f"Basic {basic}", "Bearer something", f"basic {basic}"):
        for header in ("Authorization", "authorization"):
            answer = await client.get("/doku.php?id=private:plans", headers={header: value})
            text = await answer.text()
            assert signed_in_as(text) is None, value
            assert PRIVATE_TEXT not in text
    await not_signed_in(client, dokuwiki)


async def test_credential_query_parameters_are_stripped(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """`u` and `p` (named under credentials.query) are removed from the query of every request
    without a verified gateway session, under PHP's spellings too."""
    client = await gateway(make_gateway, dokuwiki)
    for query in (
        f"id=private:plans&u=alice&p={ALICE[1]}",
        f"id=private:plans&%75=alice&%70={ALICE[1]}",
        f"id=private:plans&u[]=alice&p={ALICE[1]}",
    ):
        answer = await client.get(f"/doku.php?{query}")
        text = await answer.text()
        assert signed_in_as(text) is None, query
        assert PRIVATE_TEXT not in text, query
    await not_signed_in(client, dokuwiki)


async def test_rotated_auth_cookie_keeps_working(make_gateway: Any, dokuwiki: DokuWiki) -> None:
    """DokuWiki re-issues its DW cookie whenever the browser's headers differ from those its
    session recorded (User-Agent, Accept-Language, Accept-Encoding): the new value is passed on
    and bound, and alice stays signed in across such changes."""
    client = await gateway(make_gateway, dokuwiki)
    await signed_in(client)
    first = cookie(client, dokuwiki.auth_cookie)
    for agent in ("Browser/1", "Browser/2", "Browser/1"):
        answer = await client.get("/doku.php?id=start", headers={"User-Agent": agent})
        assert answer.status == 200
        assert signed_in_as(await answer.text()) == "alice", agent
    assert cookie(client, dokuwiki.auth_cookie) != first


async def test_steady_browser_is_not_re_issued_cookies(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """A browser whose headers do not change keeps its DW cookie: DokuWiki re-issues it only
    when its session saw other headers (which the gateway's own whoami requests may be)."""
    client = await gateway(make_gateway, dokuwiki)
    await signed_in(client)
    issued = []
    for _ in range(4):
        answer = await client.get("/doku.php?id=start")
        assert signed_in_as(await answer.text()) == "alice"
        issued.append(
            any(
                line.startswith(dokuwiki.auth_cookie + "=")
                for line in answer.headers.getall("Set-Cookie", [])
            )
        )
    assert issued[1:] == [False, False, False], issued


async def test_request_sent_before_a_re_issued_cookie_arrived_is_served(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """Browsers send a page's XHR and asset requests in parallel: one that left with the DW
    value DokuWiki has just re-issued in another answer still reaches DokuWiki signed in (and
    does not sign the person out)."""
    client = await gateway(make_gateway, dokuwiki)
    await signed_in(client)
    before = {name: cookie(client, name) for name in ("gateway_session", "DokuWiki")}
    before[dokuwiki.auth_cookie] = cookie(client, dokuwiki.auth_cookie)
    answer = await client.get("/doku.php?id=start", headers={"User-Agent": "Browser/2"})
    assert signed_in_as(await answer.text()) == "alice"
    assert cookie(client, dokuwiki.auth_cookie) != before[dokuwiki.auth_cookie], "re-issued"
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as late:
        header = "; ".join(f"{name}={value}" for name, value in before.items())
        slow = await late.post(
            client.make_url("/lib/exe/ajax.php"),
            data={"call": "index", "idx": "private"},
            headers={"Cookie": header, "User-Agent": "Browser/2"},
        )
        assert slow.status == 200
        assert "private:plans" in await slow.text()


# --- in a browser --------------------------------------------------------------------------


@contextmanager
def chromium_page() -> Iterator[Any]:
    """A page of Debian's Chromium, headless, in a fresh profile (tests/e2e/conftest.py's)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run this")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context()
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()


@contextmanager
def gateway_process(wiki: DokuWiki, tmp_path: Any) -> Iterator[str]:
    """`gateway run` in front of DokuWiki; yields its address."""
    from tests.support import GatewayProcess, settings_dict

    settings = settings_dict(tmp_path, {"wiki": wiki_app(wiki)}, POLICIES)
    process = GatewayProcess.run(tmp_path, settings)
    try:
        yield process.url
    finally:
        process.stop()


def sign_in_in_browser(page: Any, base: str) -> None:
    """DokuWiki's own form, unchanged, then enrolment."""
    from playwright.sync_api import expect

    from tests.e2e.flow import enrol as enrol_in_browser

    page.goto(f"{base}/doku.php?id=start&do=login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(ALICE[1])
    page.get_by_role("button", name="Log In").click()
    enrol_in_browser(page)
    expect(page.locator("li.user")).to_contain_text("(alice)")


@pytest.mark.browser
def test_in_a_browser(dokuwiki: DokuWiki, tmp_path: Any) -> None:
    """Chromium signs in on DokuWiki's own form (unchanged), enrols, edits a page with
    DokuWiki's own editor (its scripts, XHR lock and draft calls included) and stays signed in
    across page views."""
    from playwright.sync_api import expect

    with gateway_process(dokuwiki, tmp_path) as base, chromium_page() as page:
        sign_in_in_browser(page, base)
        name = unique_page()
        page.goto(f"{base}/doku.php?id={name}&do=edit")
        page.locator("#wiki__text").fill("Written in Chromium through the gateway.")
        page.wait_for_timeout(1500)  # DokuWiki's lock refresh and draft XHR run meanwhile
        page.locator("#edbtn__save").click()
        expect(page.locator("div.page")).to_contain_text("Written in Chromium")
        for _ in range(5):
            page.reload()
            expect(page.locator("li.user")).to_contain_text("(alice)")
        page.goto(f"{base}/doku.php?id=private:plans")
        expect(page.locator("div.page")).to_contain_text(PRIVATE_TEXT)


@pytest.mark.browser
def test_sign_out_in_a_browser(dokuwiki: DokuWiki, tmp_path: Any) -> None:
    """DokuWiki's own "Log Out" link ends the gateway session too and shows DokuWiki's login
    page; the private page is closed afterwards."""
    from playwright.sync_api import expect

    with gateway_process(dokuwiki, tmp_path) as base, chromium_page() as page:
        sign_in_in_browser(page, base)
        verified = {c["value"] for c in page.context.cookies() if c["name"] == "gateway_session"}
        page.locator("li.action.logout a").click()
        expect(page.locator("form#dw__login")).to_be_visible()
        # The login page DokuWiki shows next starts an anonymous session of its own (its
        # pre-login cookie is held): the verified gateway session is gone.
        after = {c["value"] for c in page.context.cookies() if c["name"] == "gateway_session"}
        assert not verified & after, "DokuWiki's logout ends the gateway session too"
        page.goto(f"{base}/.gateway/logout")
        expect(page.get_by_text("You are not signed in")).to_be_visible()
        page.goto(f"{base}/doku.php?id=private:plans")
        expect(page.locator("div.page")).not_to_contain_text(PRIVATE_TEXT)
