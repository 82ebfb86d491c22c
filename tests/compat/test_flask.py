"""calibre-web (a real Flask-Login application, with a remember-me cookie) behind the gateway in
intercept mode: its own login form, the second factor, and the ways around it that must fail.

The application is started once per session (app_flask.py, conftest.py); each test has its own
gateway. Findings about the application itself are in NOTES-django-flask.md.
"""

from __future__ import annotations

import re
from base64 import b64encode
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from playwright.sync_api import expect

from tests.browser import DESKTOP, chromium_page
from tests.compat.app_flask import ALICE, ALICE_PASSWORD, MALLORY, MALLORY_PASSWORD, CalibreWeb
from tests.compat.support import (
    Client,
    enrolment_opens,
    failures,
    gateway_process,
    jar_cookie,
    named_on_page,
    pass_challenge,
    probe,
    set_cookie_names,
    stranger_get,
    token_on_page,
)
from tests.e2e.flow import enrol as enrol_in_browser
from tests.support import enrol_after_login, enrol_totp, intercept_app

pytestmark = pytest.mark.compat

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# the account link in the top bar of every signed-in page
WHOAMI = r'id="top_user"[^>]*>(?:\s*<span[^>]*></span>)?\s*<span class="hidden-sm">([^<]+)</span>'
SESSION_COOKIES = ("session", "remember_token")


def settings(app: CalibreWeb) -> dict[str, Any]:
    """The intercept settings for calibre-web (NOTES-django-flask.md says why each)."""
    intercept = {
        "login": {
            "path": "/login",
            "method": "POST",
            "username_field": "username",
            "success": {"status": [302]},
            "failure": {"status": [401]},
        },
        "session_cookies": list(SESSION_COOKIES),
        "whoami": {"path": "/me", "pattern": WHOAMI},
        "logout": {"path": "/logout", "methods": ["GET"]},
    }
    return intercept_app(app.url, intercept=intercept)


async def gateway(make_gateway: Any, app: CalibreWeb) -> Client:
    return await make_gateway({"calibre": settings(app)})


async def app_login(
    client: Any,
    user: str,
    password: str,
    remember: bool = True,
    redirected: bool = False,
    base: str = "",
) -> Any:
    """calibre-web's login form as a browser fills it (Remember Me is ticked by default); opened
    at /login, or, `redirected`, at /login?next=%2F where / sends a stranger (the form has no
    action, so it posts there, with `next` in the form too)."""
    path = base + ("/login?next=%2F" if redirected else "/login")
    token = await token_on_page(client, path, CSRF_FIELD)
    form = {"next": "/", "csrf_token": token, "username": user, "password": password}
    if remember:
        form["remember_me"] = "on"
    form["submit"] = ""
    return await client.post(path, data=form, allow_redirects=False)


async def signed_in_user(client: Client) -> str | None:
    """Whom calibre-web says is signed in for this client (its top bar on /me), or None."""
    return await named_on_page(client, "/me", WHOAMI)


async def verified(make_gateway: Any, app: CalibreWeb) -> tuple[Client, str]:
    """A client signed in to calibre-web through the gateway (Remember Me ticked), with the TOTP
    secret it enrolled."""
    client = await gateway(make_gateway, app)
    return client, await enrol_after_login(client, await app_login(client, ALICE, ALICE_PASSWORD))


async def direct_cookies(app: CalibreWeb, user: str, password: str) -> dict[str, str]:
    """The signed-in session and remember_token obtained from calibre-web itself, around the
    gateway (what a thief who has the password, or copies of someone's cookies, holds)."""
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as direct:
        login = await app_login(direct, user, password, base=app.url)
        assert login.status == 302
        return {name: login.cookies[name].value for name in SESSION_COOKIES}


async def test_whole_flow(make_gateway: Any, calibreweb: CalibreWeb) -> None:
    """Password on calibre-web's form, enrolment, calibre-web signed in with its cookies released
    only then, sign-out through calibre-web, and a second sign-in that asks for the code again."""
    client = await gateway(make_gateway, calibreweb)
    login = await app_login(client, ALICE, ALICE_PASSWORD)
    assert login.status == 303, await login.text()
    assert login.headers["Location"].startswith("/.gateway/enrol")
    assert set(set_cookie_names(login)) <= {"gateway_session", "gateway_browser"}
    assert await signed_in_user(client) is None, "calibre-web opened before the second factor"

    secret, done = await enrol_totp(client, login.headers["Location"])
    assert done.headers["Location"] == "/"
    assert {"session", "remember_token"} <= set(set_cookie_names(done))
    home = await client.get("/", allow_redirects=False)
    assert home.status == 200
    assert re.search(WHOAMI, await home.text())
    assert await signed_in_user(client) == ALICE

    out = await client.get("/logout?next=/", allow_redirects=False)
    assert out.status == 302
    assert out.headers["Location"] == "/login"
    assert "gateway_session" in set_cookie_names(out)
    assert await signed_in_user(client) is None

    again = await app_login(client, ALICE, ALICE_PASSWORD)
    assert again.status == 303, await again.text()
    assert again.headers["Location"].startswith("/.gateway/challenge")
    assert await signed_in_user(client) is None
    passed = await pass_challenge(client, again.headers["Location"], secret)
    assert passed.status == 303
    assert passed.headers["Location"] == "/"
    assert await signed_in_user(client) == ALICE


async def test_login_redirected_from_the_home_page(
    make_gateway: Any, calibreweb: CalibreWeb
) -> None:
    """The login as a browser sends it after / sent it to /login?next=%2F (`next` both in the
    query string and in the form) goes on to enrolment."""
    client = await gateway(make_gateway, calibreweb)
    first = await client.get("/", allow_redirects=False)
    assert first.status == 302
    assert first.headers["Location"] == "/login?next=%2F"
    login = await app_login(client, ALICE, ALICE_PASSWORD, redirected=True)
    assert login.status == 303, await login.text()
    assert login.headers["Location"].startswith("/.gateway/enrol")


async def test_remember_me_cookie_waits_for_the_second_factor(
    make_gateway: Any, calibreweb: CalibreWeb
) -> None:
    """The remember_token of a successful login is held with the session cookie until the code,
    then released to the browser together with it."""
    client = await gateway(make_gateway, calibreweb)
    login = await app_login(client, ALICE, ALICE_PASSWORD, remember=True)
    assert login.status == 303, await login.text()
    assert not {"session", "remember_token"} & set(set_cookie_names(login))
    assert jar_cookie(client, "remember_token") is None
    assert jar_cookie(client, "session") is None
    await enrol_totp(client, login.headers["Location"])
    assert jar_cookie(client, "remember_token") is not None
    assert jar_cookie(client, "session") is not None


async def test_remember_me_cookie_alone_is_refused(
    make_gateway: Any, calibreweb: CalibreWeb
) -> None:
    """The remember_token released to a verified browser, sent from another client (alone, or
    with that client's own anonymous gateway session), is refused and never reaches
    calibre-web, which would otherwise sign alice in from it."""
    client, _ = await verified(make_gateway, calibreweb)
    remembered = jar_cookie(client, "remember_token")
    assert remembered
    base = str(client.make_url("")).rstrip("/")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as thief:
        for anonymous_first in (False, True):
            if anonymous_first:
                (await thief.get(base + "/login")).release()
            marker = probe()
            response = await thief.get(
                f"{base}/me?{marker}=1",
                headers={"Cookie": f"remember_token={remembered}"},
                allow_redirects=False,
            )
            assert response.status == 403, response.status
            assert ALICE not in await response.text()
            assert calibreweb.seen(marker) == []
    assert await signed_in_user(client) == ALICE


async def test_stolen_session_cookie_from_a_verified_browser_is_refused(
    make_gateway: Any, calibreweb: CalibreWeb
) -> None:
    """Both cookies released to a verified browser, copied into a fresh client (with the same
    User-Agent), are refused; the browser goes on."""
    client, _ = await verified(make_gateway, calibreweb)
    stolen = "; ".join(f"{name}={jar_cookie(client, name)}" for name in SESSION_COOKIES)
    base = str(client.make_url("")).rstrip("/")
    marker = probe()
    status, text = await stranger_get(f"{base}/me?{marker}=1", {"Cookie": stolen})
    assert status == 403
    assert ALICE not in text
    assert calibreweb.seen(marker) == []
    assert await signed_in_user(client) == ALICE


async def test_wrong_password_does_not_lead_to_enrolment(
    make_gateway: Any, calibreweb: CalibreWeb
) -> None:
    """A wrong password gets calibre-web's own 401 page back, and no enrolment page opens."""
    client = await gateway(make_gateway, calibreweb)
    login = await app_login(client, ALICE, "Not-the-password-1!")
    assert login.status == 401
    assert "Wrong Username or Password" in await login.text()
    assert jar_cookie(client, "session") is None
    assert not await enrolment_opens(client, "/.gateway/enrol?rd=%2F")
    assert await signed_in_user(client) is None


@pytest.mark.parametrize(
    "names", [(MALLORY, ALICE), (ALICE, MALLORY)], ids=["decoy-first", "victim-first"]
)
async def test_duplicated_user_name_field_is_refused(
    make_gateway: Any, calibreweb: CalibreWeb, names: tuple[str, str]
) -> None:
    """The victim's password with the user-name field twice (Flask's to_dict() reads the first)
    is refused with 400 and never reaches calibre-web."""
    client = await gateway(make_gateway, calibreweb)
    token = await token_on_page(client, "/login", CSRF_FIELD)
    marker = probe()
    body = (
        f"next=/&csrf_token={token}&username={names[0]}&username={names[1]}"
        f"&password={ALICE_PASSWORD}&remember_me=on&submit="
    )
    response = await client.post(
        f"/login?{marker}=1",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert response.status == 400
    assert calibreweb.seen(marker) == []
    assert await signed_in_user(client) is None


async def test_user_name_in_the_query_string_is_refused(
    make_gateway: Any, calibreweb: CalibreWeb
) -> None:
    """`POST /login?username=victim` with a decoy user name in the body is refused with 400 and
    never reaches calibre-web."""
    client = await gateway(make_gateway, calibreweb)
    token = await token_on_page(client, "/login", CSRF_FIELD)
    marker = probe()
    response = await client.post(
        f"/login?username={ALICE}&{marker}=1",
        data={"next": "/", "csrf_token": token, "username": MALLORY,
              "password": ALICE_PASSWORD, "remember_me": "on"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.status == 400
    assert calibreweb.seen(marker) == []
    assert await signed_in_user(client) is None


@pytest.mark.parametrize(
    "shape",
    [
        "session={session}",
        "Session={session}",
        "SESSION={session}",
        " session={session}",
        "%20session={session}",
        "x=1; session ={session}",
        "sessio%6e={session}",
        "x=1, session={session}",
        "remember_token={remember_token}",
        "Remember_Token={remember_token}",
        "remember%5Ftoken={remember_token}",
        "remember.token={remember_token}",
    ],
)
async def test_session_cookies_without_gateway_session_are_refused(
    make_gateway: Any, calibreweb: CalibreWeb, shape: str
) -> None:
    """calibre-web's signed-in cookies obtained around the gateway, sent without a gateway
    session under their own names or any variant a framework might read as them, are refused
    and never reach calibre-web."""
    stolen = await direct_cookies(calibreweb, ALICE, ALICE_PASSWORD)
    client = await gateway(make_gateway, calibreweb)
    marker = probe()
    url = client.make_url(f"/me?{marker}=1")
    status, text = await stranger_get(url, {"Cookie": shape.format(**stolen)})
    assert status == 403, (status, text[:300])
    assert ALICE not in text
    assert calibreweb.seen(marker) == []


async def test_basic_authorization_never_reaches_calibreweb(
    make_gateway: Any, calibreweb: CalibreWeb
) -> None:
    """`Authorization: Basic` with alice's password, without a gateway session, is not passed on:
    calibre-web's OPDS feed, which takes it, answers 401 instead of the catalogue."""
    async with ClientSession() as direct:  # the check is a real one: the feed takes Basic
        basic = "Basic " + b64encode(f"{ALICE}:{ALICE_PASSWORD}".encode()).decode()
        feed = await direct.get(calibreweb.url + "/opds", headers={"Authorization": basic})
        assert feed.status == 200
        assert "<feed" in await feed.text()
    client = await gateway(make_gateway, calibreweb)
    status, text = await stranger_get(client.make_url("/opds"), {"Authorization": basic})
    assert status in (401, 403), status
    assert "<feed" not in text


async def test_other_user_signs_in_as_themselves(make_gateway: Any, calibreweb: CalibreWeb) -> None:
    """A second account enrols its own factor and calibre-web shows it by its own name (whoami
    and the form agree)."""
    client = await gateway(make_gateway, calibreweb)
    login = await app_login(client, MALLORY, MALLORY_PASSWORD, remember=False)
    await enrol_after_login(client, login)
    assert await signed_in_user(client) == MALLORY


@pytest.mark.browser
def test_in_a_browser(calibreweb: CalibreWeb, tmp_path: Path) -> None:
    """In Chromium: / sends to calibre-web's login form, the gateway's enrolment follows, and
    calibre-web opens with its own scripts working (its user table, filled by an XHR)."""
    with (
        gateway_process(tmp_path, "calibre", settings(calibreweb)) as base,
        chromium_page(DESKTOP) as page,
    ):
        failed = failures(page)
        page.goto(base + "/")
        expect(page).to_have_url(base + "/login?next=%2F")
        page.get_by_placeholder("Username").fill(ALICE)
        page.get_by_placeholder("Password").fill(ALICE_PASSWORD)
        page.get_by_role("button", name="Login").click()
        expect(page).to_have_url(re.compile(r"/\.gateway/enrol"))
        held = {c["name"] for c in page.context.cookies()}
        assert not held & set(SESSION_COOKIES), held
        enrol_in_browser(page)
        expect(page).to_have_url(base + "/")
        expect(page.locator("#top_user")).to_contain_text(ALICE)
        assert set(SESSION_COOKIES) <= {c["name"] for c in page.context.cookies()}

        with page.expect_response(lambda r: "/ajax/listusers" in r.url) as listed:
            page.goto(base + "/admin/usertable")
        assert listed.value.status == 200
        expect(page.get_by_text(MALLORY).first).to_be_visible()
        assert failed == []
