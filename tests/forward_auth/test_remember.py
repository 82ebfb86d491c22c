"""Remember this browser (issue 18, part 2) through the real nginx (auth_request) and Caddy
(forward_auth) set-ups the suite runs, not only in proxy mode (tests/identity/
test_remember_browser.py): the box ticked on the challenge, a browser holding nothing but the
gateway_remember cookie signs in with the password alone and reaches the application (which
never sees that cookie); the sessions page lists the browser; once it is forgotten, on the
sessions page or through the admin API, the next sign-in asks for the second factor again; and a
remembered sign-in never satisfies a `reauthenticate_after` path. The gateway runs in its own
process on the real clock: no fixed clock, no sleeps (the 30 days are in the proxy-mode tests).

One gateway per front proxy, and a user per way of forgetting: a user's authenticator codes are
taken only one time step after another, and each flow uses two (the enrolment, then the
challenge with the box ticked) without waiting for the clock."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from yarl import URL

from gateway.signin import remember
from tests.forward_auth.conftest import (
    ACCESS,
    NGINX_SETTINGS,
    PASSWORD,
    USER,
    Nginx,
    front_browser,
    get,
    page_form,
    post,
    received,
)
from tests.forward_auth.test_caddy import caddy  # noqa: F401  (the fixture, with this gateway)
from tests.support import GatewayProcess, code_for, csrf_from_page, secret_from_page, settings_dict

ERIN = "erin@example.com"
ADMIN = "dave@example.com"
PASSWORDS = {USER: PASSWORD, ERIN: "erin-password", ADMIN: "dave-password"}
REMEMBER_COMPANY = (
    "company: Example\nmembers:\n  domains: [example.com]\naccount_type: partner\n"
    f"admins: [{ADMIN}]\nenforce_2fa: true\nremember_browser: 30d\n"
)
STEP_UP_ACCESS = ACCESS + (
    '    - paths: ["/money/**"]\n      access: two_factor\n      reauthenticate_after: 15m\n'
)
COOKIE = remember.COOKIE
SESSIONS = "/.gateway/account/sessions"
STEP_UP_CHALLENGE = "/.gateway/challenge?rd=%2Fmoney%2Ftransfer%3Fto%3D1"
HANDLE = re.compile(r'name="browser" value="([0-9a-f]{32})"')
API = "/.gateway/admin/api"
# Cheap hashes (as tests/security's users files have): each password check takes milliseconds.
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    """conftest's carol, erin, and dave, an admin of their company."""
    path = tmp_path / "users.yaml"
    users = {
        user: {"password": HASHER.hash(password), "email": user}
        for user, password in PASSWORDS.items()
    }
    path.write_text(yaml.safe_dump({"users": users}))
    return path


@pytest.fixture
def shipped_gateway(tmp_path: Path, users_file: Path) -> Iterator[GatewayProcess]:
    """conftest's gateway process (the shipped settings), for a company with remember_browser
    and an admin, and a step-up rule for /money/**."""
    shipped = yaml.safe_load(NGINX_SETTINGS.read_text())
    applications = shipped["applications"]
    applications["app"]["portal"]["users_file"] = str(users_file)
    settings = settings_dict(
        tmp_path / "gateway",
        applications,
        {"example.yaml": REMEMBER_COMPANY, "applications.yaml": STEP_UP_ACCESS},
        trusted_proxies=shipped["trusted_proxies"],
    )
    gateway = GatewayProcess.run(tmp_path / "gateway", settings)
    yield gateway
    gateway.stop()


@pytest.fixture
def nginx(
    echo_upstream: TestServer,
    shipped_gateway: GatewayProcess,
    nginx_factory: Callable[[int, int], Nginx],
) -> str:
    assert echo_upstream.port is not None
    return nginx_factory(shipped_gateway.port, echo_upstream.port).url


def holding_only(front: str, value: str) -> aiohttp.ClientSession:
    """A new browser whose cookie jar holds nothing but the remembered-browser cookie."""
    session = front_browser(front)
    session.cookie_jar.update_cookies({COOKIE: value}, response_url=URL(front))
    return session


async def password(session: aiohttp.ClientSession, user: str, rd: str = "%2Freports") -> str:
    """`user`'s password on the gateway's login page, through the front proxy; returns where
    the browser is sent next."""
    login = f"/.gateway/login?rd={rd}"
    html = await page_form(session, login)
    form = {"csrf_token": csrf_from_page(html), "username": user, "password": PASSWORDS[user]}
    return await post(session, login, form)


async def enrol(session: aiohttp.ClientSession, user: str) -> str:
    """`user`'s first sign-in in this browser: password, then TOTP enrolment. Returns the
    authenticator's secret (its code of this time step is used up)."""
    where = await password(session, user)
    assert where.startswith("/.gateway/enrol"), where
    html = await page_form(session, where)
    secret = secret_from_page(html)
    await post(session, where, {"csrf_token": csrf_from_page(html), "code": code_for(secret)})
    return secret


async def reaches_reports(session: aiohttp.ClientSession, user: str) -> None:
    """The application answers /reports for `user`; the gateway's cookies never reach it."""
    session.cookie_jar.update_cookies({"app_pref": "dark"})
    async with session.get("/reports", allow_redirects=False) as answer:
        assert answer.status == 200, await answer.text()
        seen = await answer.json()
    assert received(seen, "Remote-User") == [user]
    assert received(seen, "Cookie") == ["app_pref=dark"]


async def chain(session: aiohttp.ClientSession, path: str) -> list[str]:
    """GET `path` and follow the redirects within the site; where the browser was sent, in
    order, ending at a page that answers (200)."""
    sent: list[str] = []
    for _ in range(8):
        answer = await get(session, path)
        if answer.status not in (302, 303):
            assert answer.status == 200, (sent, answer.status)
            return sent
        path = answer.headers["Location"]
        sent.append(path)
    raise AssertionError(f"too many redirects: {sent}")


Forget = Callable[[str, aiohttp.ClientSession, str, str], Awaitable[None]]


async def on_the_sessions_page(
    front: str, browser: aiohttp.ClientSession, user: str, handle: str
) -> None:
    """`user`, in `browser` (signed in with the code, the box ticked), presses "Forget"."""
    html = await page_form(browser, SESSIONS)
    data = {"csrf_token": csrf_from_page(html), "browser": handle}
    assert await post(browser, SESSIONS + "/end", data) == SESSIONS
    html = await page_form(browser, SESSIONS)
    assert "is no longer remembered." in html and "Remembered browsers" not in html


async def through_the_admin_api(
    front: str, browser: aiohttp.ClientSession, user: str, handle: str
) -> None:
    """dave, an admin of the company, signed in through the front proxy with his second factor
    just now, lists `user`'s remembered browsers and forgets this one through the admin API."""
    async with front_browser(front) as admin:
        await enrol(admin, ADMIN)
        browsers = f"{API}/companies/example/members/{user}/browsers"
        async with admin.get(browsers, allow_redirects=False) as answer:
            assert answer.status == 200, await answer.text()
            listed = await answer.json()
        assert listed["count"] == 1
        [entry] = listed["browsers"]
        assert entry["id"] == handle and entry["address"] == "127.0.0.1"
        async with admin.get(API + "/session") as answer:
            token = (await answer.json())["csrf_token"]
        headers = {"X-CSRF-Token": token}
        data = {"id": handle}
        async with admin.post(browsers + "/forget", json=data, headers=headers) as answer:
            assert answer.status == 200, await answer.text()
            assert (await answer.json())["browsers_forgotten"] == 1


async def remember_through(front: str, user: str, forget: Forget) -> None:
    async with front_browser(front) as enrolling:
        secret = await enrol(enrolling, user)

    # A new sign-in: password, then the code with "Remember this browser" ticked.
    async with front_browser(front) as ticking:
        challenge = await password(ticking, user)
        assert challenge == "/.gateway/challenge?rd=%2Freports"
        html = await page_form(ticking, challenge)
        assert 'name="remember"' in html and "Remember this browser for 30 days" in html
        code = code_for(secret, offset_steps=1)  # the enrolment's time step is used up
        data = {"csrf_token": csrf_from_page(html), "code": code, "remember": "yes"}
        assert await post(ticking, challenge, data) == "/reports"
        [value] = [morsel.value for morsel in ticking.cookie_jar if morsel.key == COOKIE]
        assert value
        await reaches_reports(ticking, user)

        # A new session in a browser holding only that cookie: the password alone, and on to
        # the application through the front proxy.
        async with holding_only(front, value) as remembered:
            first = await get(remembered, "/reports")
            assert first.status in (302, 303)
            assert first.headers["Location"] == "/.gateway/login?rd=%2Freports"
            assert await password(remembered, user) == "/reports"
            await reaches_reports(remembered, user)

            # Its sessions page lists it, as this browser, remembered at the browser's address
            # as the front proxy gave it.
            html = await page_form(remembered, SESSIONS)
            assert "remembered browser (no second factor asked)" in html
            section = html.split("Remembered browsers", 1)[1]
            assert "This browser" in section and "from 127.0.0.1" in section
            [handle] = HANDLE.findall(html)

            # A step-up path is not satisfied by it: on to the challenge, which asks for a code.
            asked = await get(remembered, "/money/transfer?to=1")
            assert asked.status in (302, 303)  # nginx turns the gateway's 401 into a redirect
            continued = asked.headers["Location"]
            assert continued == "/.gateway/continue?rd=%2Fmoney%2Ftransfer%3Fto%3D1"
            stepped = await get(remembered, continued)
            assert stepped.status == 303
            assert stepped.headers["Location"] == STEP_UP_CHALLENGE
            assert 'name="code"' in await page_form(remembered, STEP_UP_CHALLENGE)
            # Left unanswered, the step-up path keeps asking; the rest of the application is
            # let through as before (remembered again, on /.gateway/continue).
            sent = await chain(remembered, "/money/transfer?to=1")
            assert sent[-1] == STEP_UP_CHALLENGE, sent
            sent = await chain(remembered, "/reports")
            assert sent == ["/.gateway/continue?rd=%2Freports", "/reports"]
            await reaches_reports(remembered, user)

        await forget(front, ticking, user, handle)

    # Forgotten: a browser holding the cookie is asked for the second factor again.
    async with holding_only(front, value) as again:
        assert await password(again, user) == "/.gateway/challenge?rd=%2Freports"
        assert (await get(again, "/reports")).status in (302, 303)


async def test_remember_this_browser_through_nginx(nginx: str) -> None:
    """Carol's browser forgotten on her sessions page, erin's by an admin through the API."""
    await remember_through(nginx, USER, on_the_sessions_page)
    await remember_through(nginx, ERIN, through_the_admin_api)


async def test_remember_this_browser_through_caddy(caddy: str) -> None:  # noqa: F811
    """Carol's browser forgotten on her sessions page, erin's by an admin through the API."""
    await remember_through(caddy, USER, on_the_sessions_page)
    await remember_through(caddy, ERIN, through_the_admin_api)
