"""Django's admin site (a real Django 5.2 project, served by gunicorn) behind the gateway in
intercept mode: its own login form, the second factor, and the ways around it that must fail.

The application is started once per session (app_django.py, conftest.py); each test has its
own gateway. Findings about the application itself are in NOTES-django-flask.md.
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
from tests.compat.app_django import ALICE, ALICE_PASSWORD, MALLORY, MALLORY_PASSWORD, DjangoAdmin
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

LOGIN = "/admin/login/"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
WHOAMI = r"Welcome,\s*<strong>([^<]+)</strong>"


def settings(admin: DjangoAdmin) -> dict[str, Any]:
    """The intercept settings for Django's admin (NOTES-django-flask.md says why each)."""
    intercept = {
        "login": {
            "path": LOGIN,
            "method": "POST",
            "username_field": "username",
            "success": {"status": [302]},
            "failure": {"status": [200]},
        },
        "session_cookies": ["sessionid"],
        "whoami": {"path": "/admin/", "pattern": WHOAMI},
        "logout": {"path": "/admin/logout/", "methods": ["POST"]},
    }
    return intercept_app(admin.url, intercept=intercept)


async def gateway(make_gateway: Any, admin: DjangoAdmin) -> Client:
    return await make_gateway({"django": settings(admin)})


async def csrf_token(client: Client, path: str = LOGIN) -> str:
    """Django's CSRF token from a page's form (its csrftoken cookie goes into the jar)."""
    return await token_on_page(client, path, CSRF_FIELD)


async def admin_login(client: Client, user: str, password: str, redirected: bool = False) -> Any:
    """The admin's login form, opened at /admin/login/; or, `redirected`, as a browser sent there
    from /admin/ fills it: posted to /admin/login/?next=/admin/ with `next` in the form too."""
    path = LOGIN + "?next=/admin/" if redirected else LOGIN
    token = await csrf_token(client, path)
    return await client.post(
        path,
        data={"csrfmiddlewaretoken": token, "username": user, "password": password,
              "next": "/admin/"},
        allow_redirects=False,
    )  # fmt: skip


async def signed_in_user(client: Client) -> str | None:
    """Whom the admin says is signed in for this client (its Welcome line), or None."""
    return await named_on_page(client, "/admin/", WHOAMI)


async def verified(make_gateway: Any, admin: DjangoAdmin) -> tuple[Client, str]:
    """A client signed in to the admin through the gateway, with the TOTP secret it enrolled."""
    client = await gateway(make_gateway, admin)
    return client, await enrol_after_login(client, await admin_login(client, ALICE, ALICE_PASSWORD))


async def direct_session(admin: DjangoAdmin, user: str, password: str) -> str:
    """A signed-in sessionid obtained from Django itself, around the gateway (what a thief who
    has the password, or a copy of someone's cookie, holds)."""
    async with ClientSession(base_url=admin.url, cookie_jar=CookieJar(unsafe=True)) as direct:
        token = await csrf_token(direct)
        async with direct.post(
            LOGIN,
            data={"csrfmiddlewaretoken": token, "username": user, "password": password},
            allow_redirects=False,
        ) as login:  # released here: an unread answer's connection would outlive its session
            assert login.status == 302
            return str(login.cookies["sessionid"].value)


async def test_whole_flow(make_gateway: Any, django_admin: DjangoAdmin) -> None:
    """Password on the admin's form, enrolment, the admin signed in with its cookie released only
    then, sign-out through the admin, and a second sign-in that asks for the code again."""
    client = await gateway(make_gateway, django_admin)
    login = await admin_login(client, ALICE, ALICE_PASSWORD)
    assert login.status == 303, await login.text()
    assert login.headers["Location"].startswith("/.gateway/enrol")
    assert "sessionid" not in set_cookie_names(login)
    assert jar_cookie(client, "sessionid") is None
    assert await signed_in_user(client) is None, "the admin opened before the second factor"

    secret, done = await enrol_totp(client, login.headers["Location"])
    assert done.headers["Location"] == "/admin/"
    assert "sessionid" in set_cookie_names(done)
    assert jar_cookie(client, "sessionid") is not None
    assert jar_cookie(client, "csrftoken") is not None  # not a session cookie: the browser's
    assert await signed_in_user(client) == ALICE

    token = await csrf_token(client, "/admin/")
    out = await client.post(
        "/admin/logout/", data={"csrfmiddlewaretoken": token}, allow_redirects=False
    )
    assert out.status == 200
    assert "Logged out" in await out.text()
    assert "gateway_session" in set_cookie_names(out)
    assert await signed_in_user(client) is None

    again = await admin_login(client, ALICE, ALICE_PASSWORD)
    assert again.status == 303, await again.text()
    assert again.headers["Location"].startswith("/.gateway/challenge")
    assert await signed_in_user(client) is None
    passed = await pass_challenge(client, again.headers["Location"], secret)
    assert passed.status == 303
    assert passed.headers["Location"] == "/admin/"
    assert await signed_in_user(client) == ALICE


async def test_login_redirected_from_the_admin_index(
    make_gateway: Any, django_admin: DjangoAdmin
) -> None:
    """The login as a browser sends it after /admin/ sent it to the login page (`next` both in
    the query string and in the form, as Django's template puts it) goes on to enrolment."""
    client = await gateway(make_gateway, django_admin)
    first = await client.get("/admin/", allow_redirects=False)
    assert first.status == 302
    assert first.headers["Location"] == LOGIN + "?next=/admin/"
    login = await admin_login(client, ALICE, ALICE_PASSWORD, redirected=True)
    assert login.status == 303, await login.text()
    assert login.headers["Location"].startswith("/.gateway/enrol")
    _, done = await enrol_totp(client, login.headers["Location"])
    assert done.headers["Location"] == "/admin/"
    assert await signed_in_user(client) == ALICE


async def test_wrong_password_does_not_lead_to_enrolment(
    make_gateway: Any, django_admin: DjangoAdmin
) -> None:
    """A wrong password gets Django's own error page back, and no enrolment page opens."""
    client = await gateway(make_gateway, django_admin)
    login = await admin_login(client, ALICE, "not-the-password")
    assert login.status == 200
    assert "Please enter the correct username and password" in await login.text()
    assert jar_cookie(client, "sessionid") is None
    assert not await enrolment_opens(client, "/.gateway/enrol?rd=%2Fadmin%2F")
    assert await signed_in_user(client) is None


@pytest.mark.parametrize(
    "names",
    [(MALLORY, ALICE), (ALICE, MALLORY)],
    ids=["decoy-first", "victim-first"],
)
async def test_duplicated_user_name_field_is_refused(
    make_gateway: Any, django_admin: DjangoAdmin, names: tuple[str, str]
) -> None:
    """The victim's password with the user-name field twice (Django reads the last) is refused
    with 400 and never reaches Django, which signs nobody in."""
    client = await gateway(make_gateway, django_admin)
    before = django_admin.last_login(ALICE)
    token = await csrf_token(client)
    marker = probe()
    body = (
        f"csrfmiddlewaretoken={token}&username={names[0]}&username={names[1]}"
        f"&password={ALICE_PASSWORD}&next=/admin/"
    )
    response = await client.post(
        f"{LOGIN}?{marker}=1",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert response.status == 400
    assert django_admin.seen(marker) == []
    assert django_admin.last_login(ALICE) == before
    assert await signed_in_user(client) is None


async def test_user_name_in_the_query_string_is_refused(
    make_gateway: Any, django_admin: DjangoAdmin
) -> None:
    """`POST /admin/login/?username=victim` with a decoy user name in the body is refused with
    400 and never reaches Django."""
    client = await gateway(make_gateway, django_admin)
    token = await csrf_token(client)
    marker = probe()
    response = await client.post(
        f"{LOGIN}?username={ALICE}&{marker}=1",
        data={"csrfmiddlewaretoken": token, "username": MALLORY, "password": ALICE_PASSWORD},
        allow_redirects=False,
    )
    assert response.status == 400
    assert django_admin.seen(marker) == []
    assert await signed_in_user(client) is None


@pytest.mark.parametrize(
    "shape",
    [
        "sessionid={v}",
        "SessionID={v}",
        "SESSIONID={v}",
        " sessionid={v}",
        "%20sessionid={v}",
        "x=1;  sessionid={v}",
        "x=1; sessionid ={v}",
        "session%69d={v}",
        "x=1, sessionid={v}",
    ],
)
async def test_session_cookie_without_gateway_session_is_refused(
    make_gateway: Any, django_admin: DjangoAdmin, shape: str
) -> None:
    """A signed-in sessionid obtained around the gateway, sent without a gateway session under
    its own name or any variant a framework might read as it, is refused: the admin never
    answers for alice."""
    stolen = await direct_session(django_admin, ALICE, ALICE_PASSWORD)
    client = await gateway(make_gateway, django_admin)
    marker = probe()
    url = client.make_url(f"/admin/?{marker}=1")
    status, text = await stranger_get(url, {"Cookie": shape.format(v=stolen)})
    assert status == 403, (status, text[:300])
    assert ALICE not in text
    assert django_admin.seen(marker) == []


async def test_basic_authorization_never_reaches_django(
    make_gateway: Any, django_admin: DjangoAdmin
) -> None:
    """`Authorization: Basic` with alice's password, without a gateway session, is not passed on:
    gunicorn's access log shows the request arrived without it (or not at all)."""
    client = await gateway(make_gateway, django_admin)
    basic = "Basic " + b64encode(f"{ALICE}:{ALICE_PASSWORD}".encode()).decode()
    marker = probe()
    _, text = await stranger_get(client.make_url(f"/admin/?{marker}=1"), {"Authorization": basic})
    assert "Welcome" not in text
    lines = django_admin.seen(marker)
    assert all(line.endswith("auth=-") for line in lines), lines


async def test_stolen_cookie_from_a_verified_browser_is_refused(
    make_gateway: Any, django_admin: DjangoAdmin
) -> None:
    """The sessionid released to a verified browser, copied into a fresh client, is refused
    (with or without a gateway session of the thief's own), while the browser goes on."""
    client, _ = await verified(make_gateway, django_admin)
    stolen = jar_cookie(client, "sessionid")
    assert stolen
    base = str(client.make_url("")).rstrip("/")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as thief:
        bare = await thief.get(
            base + "/admin/", headers={"Cookie": f"sessionid={stolen}"}, allow_redirects=False
        )
        assert bare.status == 403
        assert ALICE not in await bare.text()
        (await thief.get(base + LOGIN)).release()  # the thief's own (anonymous) gateway session
        own = await thief.get(
            base + "/admin/", headers={"Cookie": f"sessionid={stolen}"}, allow_redirects=False
        )
        assert own.status == 403
        assert ALICE not in await own.text()
    assert await signed_in_user(client) == ALICE


async def test_other_user_signs_in_as_themselves(
    make_gateway: Any, django_admin: DjangoAdmin
) -> None:
    """A second account enrols its own factor and the admin greets it by its own name (whoami
    and the form agree)."""
    client = await gateway(make_gateway, django_admin)
    await enrol_after_login(client, await admin_login(client, MALLORY, MALLORY_PASSWORD))
    assert await signed_in_user(client) == MALLORY


@pytest.mark.browser
def test_in_a_browser(django_admin: DjangoAdmin, tmp_path: Path) -> None:
    """In Chromium: /admin/ sends to Django's login form, the gateway's enrolment follows, and the
    admin opens with its own scripts working (the theme toggle, the change list's select-all)."""
    with (
        gateway_process(tmp_path, "django", settings(django_admin)) as base,
        chromium_page(DESKTOP) as page,
    ):
        failed = failures(page)
        page.goto(base + "/admin/")
        expect(page).to_have_url(base + LOGIN + "?next=/admin/")
        page.get_by_label("Username").fill(ALICE)
        page.get_by_label("Password").fill(ALICE_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/\.gateway/enrol"))
        assert "sessionid" not in {c["name"] for c in page.context.cookies()}
        enrol_in_browser(page)
        expect(page).to_have_url(base + "/admin/")
        expect(page.locator("#user-tools strong")).to_have_text(ALICE)

        theme = page.locator("html")
        before = theme.get_attribute("data-theme")
        page.locator("button.theme-toggle").first.click()
        expect(theme).not_to_have_attribute("data-theme", before or "")

        page.goto(base + "/admin/auth/user/")
        expect(page.get_by_role("link", name=MALLORY)).to_be_visible()
        page.locator("#action-toggle").check()
        expect(page.locator(".action-counter")).to_contain_text("2 of 2 selected")
        assert failed == []
