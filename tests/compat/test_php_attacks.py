"""DokuWiki behind the gateway: the ways past the second factor a PHP application offers, each
of which must fail (test_php.py's docstring lists DokuWiki's quirks they rest on), and its
re-issued cookies, which must keep working."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar, FormData

from tests.compat.app_php import (
    ALICE,
    BOB,
    PRIVATE_TEXT,
    DokuWiki,
    auth_cookie_name,
    direct_cookies,
    gateway,
    not_signed_in,
    signed_in,
    signed_in_as,
    who,
    wiki_login,
)
from tests.compat.support import Client, enrolment_opens, jar_cookie
from tests.support import csrf_from_page

pytestmark = pytest.mark.compat


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


async def refused_unread(answer: Any, content_type: str) -> None:
    """A body with u and p under `content_type` was refused (400), and read no wiki page."""
    text = await answer.text()
    assert PRIVATE_TEXT not in text, f"{content_type}: the password alone read the wiki"
    assert signed_in_as(text) is None
    assert answer.status == 400, answer.status


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
    await refused_unread(answer, content_type)


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
    await refused_unread(answer, content_type)


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
        assert jar_cookie(client, "DokuWiki") is None
        assert not await enrolment_opens(client)
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
    first = jar_cookie(client, dokuwiki.auth_cookie)
    for agent in ("Browser/1", "Browser/2", "Browser/1"):
        answer = await client.get("/doku.php?id=start", headers={"User-Agent": agent})
        assert answer.status == 200
        assert signed_in_as(await answer.text()) == "alice", agent
    assert jar_cookie(client, dokuwiki.auth_cookie) != first


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
    before = {name: jar_cookie(client, name) for name in ("gateway_session", "DokuWiki")}
    before[dokuwiki.auth_cookie] = jar_cookie(client, dokuwiki.auth_cookie)
    answer = await client.get("/doku.php?id=start", headers={"User-Agent": "Browser/2"})
    assert signed_in_as(await answer.text()) == "alice"
    assert jar_cookie(client, dokuwiki.auth_cookie) != before[dokuwiki.auth_cookie], "re-issued"
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as late:
        header = "; ".join(f"{name}={value}" for name, value in before.items())
        slow = await late.post(
            client.make_url("/lib/exe/ajax.php"),
            data={"call": "index", "idx": "private"},
            headers={"Cookie": header, "User-Agent": "Browser/2"},
        )
        assert slow.status == 200
        assert "private:plans" in await slow.text()
