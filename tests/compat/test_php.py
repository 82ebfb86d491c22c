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
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import ClientSession, CookieJar
from playwright.sync_api import Page, expect

from tests.browser import chromium_page
from tests.compat.app_php import (
    ALICE,
    LOGIN_FORM,
    POLICIES,
    PRIVATE_TEXT,
    DokuWiki,
    form_fields,
    gateway,
    login_form,
    not_signed_in,
    signed_in,
    signed_in_as,
    unique_page,
    who,
    wiki_app,
    wiki_login,
)
from tests.compat.support import another_browser, gateway_process, jar_cookie, pass_challenge
from tests.e2e.flow import enrol as enrol_in_browser
from tests.support import enrol_totp

pytestmark = pytest.mark.compat

EDIT_FORM = re.compile(r'<form id="dw__editform" action="([^"]*)"(.*?)</form>', re.S)


# --- the whole flow ------------------------------------------------------------------------


async def test_sign_in_enrol_edit_and_use_the_wiki(make_gateway: Any, dokuwiki: DokuWiki) -> None:
    """DokuWiki's password, then enrolment, then DokuWiki's own cookies released: the wiki shows
    alice signed in, saves her edit, and answers its XHR API for her."""
    client = await gateway(make_gateway, dokuwiki)
    await login_form(client)
    assert jar_cookie(client, "DokuWiki") is None, "the pre-login PHP session stays at the gateway"
    login = await wiki_login(client, *ALICE)
    assert login.status == 303, await login.text()
    assert login.headers["Location"] == "/.gateway/enrol?rd=%2Fdoku.php%3Fid%3Dstart"
    assert jar_cookie(client, dokuwiki.auth_cookie) is None
    assert await who(client) is None, "between the password and the code: not signed in"
    _, done = await enrol_totp(client, login.headers["Location"])
    assert done.headers["Location"] == "/doku.php?id=start"
    assert jar_cookie(client, dokuwiki.auth_cookie) is not None
    assert jar_cookie(client, "DokuWiki") is not None, "the session the DW cookie is bound to"
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
    assert jar_cookie(client, dokuwiki.auth_cookie) is None

    async with another_browser(client) as other:
        body = {"sectok": "", "u": "alice", "p": ALICE[1]}
        login = await other.post("/doku.php?id=start&do=login", data=body, allow_redirects=False)
        assert login.status == 303, f"{login.status}: {await login.text()}"
        assert login.headers["Location"].startswith("/.gateway/enrol")
        login.release()  # an unread answer's connection would outlive its session

    async with another_browser(client) as third:
        body = {"sectok": "", "id": "private:plans", "do": "login", "u": "alice", "p": ALICE[1]}
        login = await third.post("/doku.php?id=start", data=body, allow_redirects=False)
        assert login.status == 400, await login.text()
        login.release()
        await not_signed_in(third, dokuwiki)


async def test_remember_me_cookie_alone_signs_in_after_the_code(
    make_gateway: Any, dokuwiki: DokuWiki
) -> None:
    """With "Remember me" DokuWiki's DW cookie lasts a year and needs no PHP session; it too
    waits for the second factor."""
    client = await gateway(make_gateway, dokuwiki)
    login = await wiki_login(client, *ALICE, remember=True)
    assert login.status == 303
    assert jar_cookie(client, dokuwiki.auth_cookie) is None
    _, done = await enrol_totp(client, login.headers["Location"])
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
    old = {name: jar_cookie(client, name) for name in ("gateway_session", "DokuWiki")}
    old[dokuwiki.auth_cookie] = jar_cookie(client, dokuwiki.auth_cookie)
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
    done = await pass_challenge(client, location, secret)
    assert done.status == 303
    assert await who(client) == "alice"


# --- in a browser --------------------------------------------------------------------------


def sign_in_in_browser(page: Page, base: str) -> None:
    """DokuWiki's own form, unchanged, then enrolment."""
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
    with (
        gateway_process(tmp_path, "wiki", wiki_app(dokuwiki), POLICIES) as base,
        chromium_page() as page,
    ):
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
    with (
        gateway_process(tmp_path, "wiki", wiki_app(dokuwiki), POLICIES) as base,
        chromium_page() as page,
    ):
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
