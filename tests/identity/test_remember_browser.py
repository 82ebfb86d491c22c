"""Remember this browser (issue 18, part 2) over HTTP, portal mode, a fixed clock, on SQLite and
on Redis: the tick box where the company allows it (never for a client, never without the key);
a remembered browser skips the challenge until exactly remember_browser has run (30 days: at
30d-1s it skips, at 30d it asks); a forged cookie, another user's or another company's is
refused; a reset, a factor change, a sign-out everywhere and a "Forget" on the sessions page or
by an admin void it; it never satisfies a step-up and never earns a trusted-network cookie."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import build_runtime, create_app
from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.operator import reset_user
from gateway.policy import load_policy_dir
from gateway.settings import settings_from_dict
from gateway.signin import remember
from gateway.store import Store
from tests.admin import openapi
from tests.support import (
    code_for,
    csrf_from_page,
    enrol_totp,
    portal_app,
    secret_from_page,
    settings_dict,
)

T0 = 1_800_000_000.0  # a whole number of 30-second steps
DAY = 86400.0
CAROL, DAVE = "carol@example.com", "dave@example.com"  # a partner company with the key
ERIN = "erin@other.example"  # a partner company without it
FAY = "fay@clients.example"  # a client company (which may not set it)
PASSWORDS = {u: u.split("@")[0] + "-password" for u in (CAROL, DAVE, ERIN, FAY)}
EXAMPLE = """
company: Example Company
members:
  domains: [example.com]
account_type: partner
admins: [dave@example.com]
enforce_2fa: true
methods:
  allowed: [totp, recovery]
remember_browser: 30d
trusted_networks:
  networks: [{networks}]
session:
  idle_timeout: 8h
  lifetime: 12h
"""
OTHER = """
company: Other Company
members:
  domains: [other.example]
account_type: partner
enforce_2fa: true
"""
CLIENTS = """
company: Client Company
members:
  domains: [clients.example]
account_type: client
enforce_2fa: true
"""
ACCESS = """applications:
  app:
    - paths: ["/admin/**"]
      access: two_factor
      reauthenticate_after: 15m
"""
COOKIE = remember.COOKIE
BOX = 'name="remember"'
SESSIONS = "/.gateway/account/sessions"
LIST = "/companies/{company}/members/{user}/browsers"
FORGET = LIST + "/forget"
HANDLE = re.compile(r'name="browser" value="([0-9a-f]{32})"')
LOGOUT = "/.gateway/logout"

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def settings(
    tmp_path: Path, upstream_url: str, store: str | None, networks: str, **more: Any
) -> dict[str, Any]:
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n"
        + "".join(
            f"  {user}:\n    password: '{hash_password(password)}'\n"
            for user, password in PASSWORDS.items()
        )
    )
    extra: dict[str, Any] = {"store": store} if store else {}
    extra |= more
    policies = {
        "example.yaml": EXAMPLE.format(networks=networks),
        "other.yaml": OTHER,
        "clients.yaml": CLIENTS,
        "access.yaml": ACCESS,
    }
    return settings_dict(tmp_path, {"app": portal_app(upstream_url, users)}, policies, **extra)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[[], aiohttp.ClientSession]]:
    made: list[aiohttp.ClientSession] = []

    def make() -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        made.append(session)
        return session

    yield make
    for session in made:
        await session.close()


class Gateway:
    def __init__(self, client: Client, clock: FixedClock) -> None:
        self.client = client
        self.clock = clock
        self.secrets: dict[str, str] = {}

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    @property
    def runtime(self) -> Any:
        return self.client.server.app[RUNTIME]

    @property
    def store(self) -> Store:
        return self.runtime.store  # type: ignore[no-any-return]

    async def password(self, browser: aiohttp.ClientSession, user: str) -> str:
        """The password; returns where the gateway sends the browser next."""
        page = await browser.get(self.url("/.gateway/login?rd=%2F"))
        login = await browser.post(
            self.url("/.gateway/login?rd=%2F"),
            data={
                "csrf_token": csrf_from_page(await page.text()),
                "username": user,
                "password": PASSWORDS[user],
            },
            allow_redirects=False,
        )
        assert login.status == 303, await login.text()
        return login.headers["Location"]

    async def enrol(self, user: str, browser: aiohttp.ClientSession) -> None:
        location = await self.password(browser, user)
        self.secrets[user], _ = await enrol_totp(_At(self, browser), location, self.clock)

    async def challenge_page(self, browser: aiohttp.ClientSession, location: str) -> str:
        assert location.startswith("/.gateway/challenge"), location
        page = await browser.get(self.url(location))
        assert page.status == 200
        return await page.text()

    async def answer(
        self, browser: aiohttp.ClientSession, user: str, location: str, tick: bool
    ) -> aiohttp.ClientResponse:
        """The challenge at `location` answered with the authenticator app, the box ticked or not."""
        html = await self.challenge_page(browser, location)
        self.clock.advance(30)  # a code of a new time step (used steps are refused)
        data = {
            "csrf_token": csrf_from_page(html),
            "code": code_for(self.secrets[user], self.clock()),
        }
        if tick:
            data["remember"] = "yes"
        answer = await browser.post(self.url(location), data=data, allow_redirects=False)
        assert answer.status == 303, await answer.text()
        return answer

    async def remembered_sign_in(self, user: str, browser: aiohttp.ClientSession) -> str:
        """Enrolled, then signed in with the box ticked; returns the cookie's value."""
        if user not in self.secrets:
            enrolling = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            try:
                await self.enrol(user, enrolling)
            finally:
                await enrolling.close()
        location = await self.password(browser, user)
        answer = await self.answer(browser, user, location, tick=True)
        value = answer.cookies[COOKIE].value
        assert value
        return value

    def fresh_browser(
        self, make: Callable[[], aiohttp.ClientSession], value: str
    ) -> aiohttp.ClientSession:
        """A browser with no session, holding only the remembered-browser cookie `value`."""
        browser = make()
        browser.cookie_jar.update_cookies({COOKIE: value}, response_url=self.client.make_url("/"))
        return browser

    async def session_of(self, browser: aiohttp.ClientSession) -> Any:
        cookie = next(c for c in browser.cookie_jar if c.key == "gateway_session")
        return await self.runtime.sessions.load(cookie.value, "app")


class _At:
    def __init__(self, gateway: Gateway, browser: aiohttp.ClientSession) -> None:
        self.gateway, self.browser = gateway, browser

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.browser.get(self.gateway.url(path), **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.browser.post(self.gateway.url(path), **kwargs)


async def _gateway(
    aiohttp_client: MakeClient,
    tmp_path: Path,
    upstream_url: str,
    store_url: str | None,
    networks: str = "192.0.2.0/24",
    **more: Any,
) -> Gateway:
    clock = FixedClock(T0)
    data = settings(tmp_path, upstream_url, store_url, networks, **more)
    config = settings_from_dict(data, source=Path(data["policy_dir"]).parent / "gateway.yaml")
    policy = load_policy_dir(config.policy_dir, known_apps=[a.name for a in config.applications])
    client = await aiohttp_client(create_app(build_runtime(config, policy, clock=clock)))
    return Gateway(client, clock)


@pytest.fixture
async def gateway(
    aiohttp_client: MakeClient, tmp_path: Path, upstream_url: str, store_url: str | None
) -> Gateway:
    return await _gateway(aiohttp_client, tmp_path, upstream_url, store_url)


def audited(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    return [line for line in lines if line["event"] == event]


# -- the tick box ---------------------------------------------------------------------------


async def test_the_box_is_shown_only_where_the_company_allows_it(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """On the challenge page of a partner company with remember_browser; not for a company
    without the key, not for a client company."""
    for user, shown in ((CAROL, True), (ERIN, False), (FAY, False)):
        browser = browsers()
        await gateway.enrol(user, browser)
        other = browsers()
        html = await gateway.challenge_page(other, await gateway.password(other, user))
        assert (BOX in html) is shown, user
        if shown:
            assert "Remember this browser for 30 days" in html


async def test_a_ticked_box_where_not_allowed_remembers_nothing(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """The box posted anyway (no key, or a client company): no cookie, no record."""
    for user in (ERIN, FAY):
        await gateway.enrol(user, browsers())
        browser = browsers()
        answer = await gateway.answer(browser, user, await gateway.password(browser, user), True)
        assert COOKIE not in answer.cookies
        assert await gateway.store.list_remembered(user, gateway.clock()) == []


async def test_an_unticked_box_remembers_nothing(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    await gateway.enrol(CAROL, browsers())
    browser = browsers()
    answer = await gateway.answer(browser, CAROL, await gateway.password(browser, CAROL), False)
    assert COOKIE not in answer.cookies
    assert await gateway.store.list_remembered(CAROL, gateway.clock()) == []


# -- the 30 days ----------------------------------------------------------------------------


async def test_a_remembered_browser_skips_the_challenge_until_30_days(
    gateway: Gateway,
    browsers: Callable[[], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At 30 days less a second: straight on, verified as "remembered"; at 30 days: asked."""
    caplog.set_level("INFO", logger="gateway.audit")
    value = await gateway.remembered_sign_in(CAROL, browsers())
    since = gateway.clock()
    [line] = audited(caplog, "browser_remembered")
    assert (
        line["user"] == CAROL and line["company"] == "example" and line["until"] == since + 30 * DAY
    )

    gateway.clock.now = since + 30 * DAY - 1
    browser = gateway.fresh_browser(browsers, value)
    assert await gateway.password(browser, CAROL) == "/"
    session = await gateway.session_of(browser)
    assert session is not None and session.second_factor == "remembered"
    home = await browser.get(gateway.url("/"), allow_redirects=False)
    assert home.status == 200
    assert COOKIE not in await home.text()  # the gateway's own cookie never reaches the application
    [ok] = [e for e in audited(caplog, "second_factor_ok") if e["via"] == "remembered"]
    assert ok["user"] == CAROL

    gateway.clock.now = since + 30 * DAY
    later = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(later, CAROL)).startswith("/.gateway/challenge")


async def test_the_cookie_attributes(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """HttpOnly, SameSite=Lax, a Max-Age of 30 days, the path /; no Secure over plain HTTP."""
    await gateway.enrol(CAROL, browsers())
    browser = browsers()
    location = await gateway.password(browser, CAROL)
    answer = await gateway.answer(browser, CAROL, location, tick=True)
    [line] = [h for h in answer.headers.getall("Set-Cookie") if h.startswith(COOKIE + "=")]
    attributes = [part.strip().lower() for part in line.split(";")[1:]]
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert f"max-age={int(30 * DAY)}" in attributes and "secure" not in attributes


async def test_over_tls_the_cookie_is_host_prefixed_and_secure(
    aiohttp_client: MakeClient, tmp_path: Path, upstream_url: str, store_url: str | None
) -> None:
    """Over TLS (as a trusted proxy says): __Host-gateway_remember, Secure, HttpOnly,
    SameSite=Lax, Path=/, no Domain; and that cookie alone skips the challenge."""
    gateway = await _gateway(
        aiohttp_client, tmp_path, upstream_url, store_url, trusted_proxies=["127.0.0.1/32"]
    )
    tls = {"X-Forwarded-Proto": "https"}
    client = gateway.client

    async def go(jar: dict[str, str], method: str, target: str, **kwargs: Any) -> Any:
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        answer = await client.request(
            method, target, headers={**tls, "Cookie": cookie}, allow_redirects=False, **kwargs
        )
        client.session.cookie_jar.clear()
        for line in answer.headers.getall("Set-Cookie", []):
            name, value = line.split(";", 1)[0].split("=", 1)
            jar[name.strip()] = value
        return answer

    async def password(jar: dict[str, str]) -> str:
        page = await go(jar, "GET", "/.gateway/login?rd=%2F")
        login = await go(
            jar,
            "POST",
            "/.gateway/login?rd=%2F",
            data={
                "csrf_token": csrf_from_page(await page.text()),
                "username": CAROL,
                "password": PASSWORDS[CAROL],
            },
        )
        assert login.status == 303
        return str(login.headers["Location"])

    first: dict[str, str] = {}
    location = await password(first)
    html = await (await go(first, "GET", location)).text()
    secret = secret_from_page(html)
    data = {"csrf_token": csrf_from_page(html), "code": code_for(secret, gateway.clock())}
    assert (await go(first, "POST", location, data=data)).status == 303

    second: dict[str, str] = {}
    location = await password(second)
    html = await (await go(second, "GET", location)).text()
    assert BOX in html
    gateway.clock.advance(30)
    data = {
        "csrf_token": csrf_from_page(html),
        "code": code_for(secret, gateway.clock()),
        "remember": "yes",
    }
    answer = await go(second, "POST", location, data=data)
    assert answer.status == 303
    set_cookies = answer.headers.getall("Set-Cookie", [])
    [line] = [h for h in set_cookies if h.startswith("__Host-" + COOKIE + "=")]
    attributes = [part.strip().lower() for part in line.split(";")[1:]]
    for wanted in ("secure", "httponly", "samesite=lax", "path=/"):
        assert wanted in attributes, line
    assert not any(a.startswith("domain") for a in attributes)
    alone = {"__Host-" + COOKIE: second["__Host-" + COOKIE]}
    assert await password(alone) == "/"


# -- cookies refused ------------------------------------------------------------------------


async def test_forged_and_foreign_cookies_are_refused(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """A tampered cookie, one signed with another key, carol's for dave, one naming another
    company, one naming no record: each is asked for the second factor."""
    value = await gateway.remembered_sign_in(CAROL, browsers())
    await gateway.enrol(DAVE, browsers())
    keys = gateway.runtime.secrets.signing_keys
    claim = remember.read(value, keys)
    assert claim is not None and claim.user == CAROL
    forged = {
        "tampered": value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
        "another key": remember.sign(("another-key-0123456789abcdefghijklmnop",), claim),
        "another company": remember.sign(keys, remember.Claim(CAROL, "other", claim.handle)),
        "no such record": remember.sign(keys, remember.Claim(CAROL, "example", "0" * 32)),
        "garbage": "not-a-cookie",
    }
    for name, cookie in forged.items():
        browser = gateway.fresh_browser(browsers, cookie)
        where = await gateway.password(browser, CAROL)
        assert where.startswith("/.gateway/challenge"), name
    dave = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(dave, DAVE)).startswith("/.gateway/challenge")
    assert await gateway.password(gateway.fresh_browser(browsers, value), CAROL) == "/"


# -- void after ------------------------------------------------------------------------------


async def test_an_operator_reset_forgets_the_browsers(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession], store_url: str | None
) -> None:
    value = await gateway.remembered_sign_in(CAROL, browsers())
    url = store_url or gateway.runtime.settings.store
    await reset_user(url, CAROL)
    assert await gateway.store.list_remembered(CAROL, gateway.clock()) == []
    browser = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(browser, CAROL)).startswith("/.gateway/enrol")


async def test_an_admin_reset_forgets_the_browsers(
    gateway: Gateway,
    browsers: Callable[[], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = await gateway.remembered_sign_in(CAROL, browsers())
    dave = browsers()
    await gateway.remembered_sign_in(DAVE, dave)
    member = f"/.gateway/admin/example/members/{CAROL}"
    html = await (await dave.get(gateway.url(member))).text()
    caplog.set_level("INFO", logger="gateway.audit")
    done = await dave.post(
        gateway.url(member + "/reset"),
        data={"csrf_token": csrf_from_page(html), "confirm": "yes"},
        allow_redirects=False,
    )
    assert done.status == 303
    [line] = audited(caplog, "browsers_forgotten")
    assert line["user"] == CAROL and line["reason"] == "admin_reset" and line["admin"] == DAVE
    again = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/enrol")


async def test_signing_out_everywhere_forgets_the_browsers(
    gateway: Gateway,
    browsers: Callable[[], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    browser = browsers()
    value = await gateway.remembered_sign_in(CAROL, browser)
    caplog.set_level("INFO", logger="gateway.audit")
    page = await browser.get(gateway.url(LOGOUT))
    out = await browser.post(
        gateway.url(LOGOUT),
        data={"csrf_token": csrf_from_page(await page.text())},
        allow_redirects=False,
    )
    assert out.status == 303
    [line] = audited(caplog, "browsers_forgotten")
    assert line["user"] == CAROL and line["reason"] == "sign_out" and line["forgotten"] == 1
    again = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def test_a_factor_change_forgets_the_browsers(
    gateway: Gateway,
    browsers: Callable[[], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """New recovery codes (announce_factor, as any added or removed factor): forgotten."""
    browser = browsers()
    value = await gateway.remembered_sign_in(CAROL, browser)
    caplog.set_level("INFO", logger="gateway.audit")
    page = await browser.get(gateway.url("/.gateway/recovery"))
    assert page.status == 200
    made = await browser.post(
        gateway.url("/.gateway/recovery"),
        data={"csrf_token": csrf_from_page(await page.text())},
        allow_redirects=False,
    )
    assert made.status == 303
    [line] = audited(caplog, "browsers_forgotten")
    assert line["user"] == CAROL and line["reason"] == "factor_change" and line["forgotten"] == 1
    again = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def test_the_sessions_page_lists_and_forgets_a_remembered_browser(
    gateway: Gateway,
    browsers: Callable[[], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Listed under "Remembered browsers", this one marked; "Forget" ends it (audited); another
    person cannot forget it by its handle."""
    browser = browsers()
    value = await gateway.remembered_sign_in(CAROL, browser)
    html = await (await browser.get(gateway.url(SESSIONS))).text()
    assert "Remembered browsers" in html
    [handle] = HANDLE.findall(html)
    section = html.split("Remembered browsers", 1)[1]
    assert "This browser" in section and "from 127.0.0.1" in section
    dave = browsers()
    await gateway.remembered_sign_in(DAVE, dave)
    theirs = await forget(gateway, dave, handle)
    assert theirs.status == 303
    assert (
        "That browser was already forgotten."
        in await (await dave.get(gateway.url(SESSIONS))).text()
    )
    assert await gateway.store.remembered_browser(CAROL, handle, gateway.clock()) is not None
    caplog.set_level("INFO", logger="gateway.audit")
    mine = await forget(gateway, browser, handle)
    assert mine.status == 303 and mine.headers["Location"] == SESSIONS
    html = await (await browser.get(gateway.url(SESSIONS))).text()
    assert "is no longer remembered." in html and "Remembered browsers" not in html
    [line] = audited(caplog, "browser_forgotten")
    assert line["user"] == CAROL and line["browser"] == handle and line["by"] == "self"
    again = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def forget(
    gateway: Gateway, browser: aiohttp.ClientSession, handle: str
) -> aiohttp.ClientResponse:
    page = await browser.get(gateway.url(SESSIONS))
    return await browser.post(
        gateway.url(SESSIONS + "/end"),
        data={"csrf_token": csrf_from_page(await page.text()), "browser": handle},
        allow_redirects=False,
    )


async def test_an_admin_forgets_a_members_browser_on_the_member_page(
    gateway: Gateway,
    browsers: Callable[[], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = await gateway.remembered_sign_in(CAROL, browsers())
    dave = browsers()
    await gateway.remembered_sign_in(DAVE, dave)  # the admin, a real factor just now
    member = f"/.gateway/admin/example/members/{CAROL}"
    html = await (await dave.get(gateway.url(member))).text()
    assert "Remembered browsers" in html
    [handle] = HANDLE.findall(html)
    caplog.set_level("INFO", logger="gateway.audit")
    done = await dave.post(
        gateway.url(member + "/browsers/forget"),
        data={"csrf_token": csrf_from_page(html), "browser": handle},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"].endswith("?done=browser")
    html = await (await dave.get(gateway.url(done.headers["Location"]))).text()
    assert "The browser is no longer remembered." in html and "Remembered browsers" not in html
    [line] = audited(caplog, "admin_browser_forgotten")
    assert line["admin"] == DAVE and line["member"] == CAROL and line["browser"] == handle
    again = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def test_an_admin_lists_and_forgets_a_members_browser_through_the_api(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    value = await gateway.remembered_sign_in(CAROL, browsers())
    dave = browsers()
    await gateway.remembered_sign_in(DAVE, dave)
    api = "/.gateway/admin/api"
    base = f"{api}/companies/example/members/{CAROL}/browsers"
    listed = await (await dave.get(gateway.url(base))).json()
    openapi.check(LIST, "GET", 200, listed)
    assert listed["member"] == CAROL and listed["count"] == 1
    [entry] = listed["browsers"]
    assert entry["address"] == "127.0.0.1" and entry["until"].endswith("Z")
    token = (await (await dave.get(gateway.url(api + "/session"))).json())["csrf_token"]
    headers = {"X-CSRF-Token": token}
    bad = await dave.post(gateway.url(base + "/forget"), json={"id": 3}, headers=headers)
    assert bad.status == 400
    openapi.check(FORGET, "POST", 400, await bad.json())
    done = await dave.post(gateway.url(base + "/forget"), json={"id": entry["id"]}, headers=headers)
    assert done.status == 200 and (await done.json())["browsers_forgotten"] == 1
    openapi.check(FORGET, "POST", 200, await done.json())
    gone = await dave.post(gateway.url(base + "/forget"), json={"id": entry["id"]}, headers=headers)
    assert gone.status == 404
    openapi.check(FORGET, "POST", 404, await gone.json())
    assert (await (await dave.get(gateway.url(base))).json())["count"] == 0
    again = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


# -- not a real factor ----------------------------------------------------------------------


async def test_a_remembered_browser_never_satisfies_a_step_up(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    value = await gateway.remembered_sign_in(CAROL, browsers())
    browser = gateway.fresh_browser(browsers, value)
    assert await gateway.password(browser, CAROL) == "/"
    assert (await browser.get(gateway.url("/"), allow_redirects=False)).status == 200
    admin = await browser.get(gateway.url("/admin/x"), allow_redirects=False)
    assert admin.status in (302, 303), admin.status
    assert "/.gateway/" in admin.headers["Location"]
    # the same path with a real second factor just now: let through
    real = browsers()
    await gateway.answer(real, CAROL, await gateway.password(real, CAROL), tick=False)
    assert (await real.get(gateway.url("/admin/x"), allow_redirects=False)).status == 200


async def test_a_remembered_browser_never_earns_a_trust_cookie(
    aiohttp_client: MakeClient,
    tmp_path: Path,
    upstream_url: str,
    store_url: str | None,
    browsers: Callable[[], aiohttp.ClientSession],
) -> None:
    """From inside the company's trusted network: a real factor earns one; a remembered browser
    (with no trust cookie of its own) is let through without earning one."""
    gateway = await _gateway(aiohttp_client, tmp_path, upstream_url, store_url, "127.0.0.0/8")
    await gateway.enrol(CAROL, browsers())
    browser = browsers()
    answer = await gateway.answer(browser, CAROL, await gateway.password(browser, CAROL), True)
    assert "gateway_trust" in answer.cookies and COOKIE in answer.cookies
    fresh = gateway.fresh_browser(browsers, answer.cookies[COOKIE].value)
    page = await fresh.get(gateway.url("/.gateway/login?rd=%2F"))
    login = await fresh.post(
        gateway.url("/.gateway/login?rd=%2F"),
        data={
            "csrf_token": csrf_from_page(await page.text()),
            "username": CAROL,
            "password": PASSWORDS[CAROL],
        },
        allow_redirects=False,
    )
    assert login.status == 303 and login.headers["Location"] == "/"
    assert "gateway_trust" not in login.cookies
    assert not any(c.key == "gateway_trust" for c in fresh.cookie_jar)
    session = await gateway.session_of(fresh)
    assert session.second_factor == "remembered"


async def test_signing_out_everywhere_else_forgets_the_other_browsers(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """A browser remembered by whoever held a session (a phish in real time, the box ticked)
    is forgotten when the person signs out everywhere else; their own browser stays remembered
    (review finding F1: ending the sessions left the attacker skipping the challenge)."""
    attackers = await gateway.remembered_sign_in(CAROL, browsers())
    victim = browsers()
    own = await gateway.remembered_sign_in(CAROL, victim)
    page = await victim.get(gateway.url(SESSIONS))
    out = await victim.post(
        gateway.url(SESSIONS + "/end-others"),
        data={"csrf_token": csrf_from_page(await page.text())},
        allow_redirects=False,
    )
    assert out.status == 303
    again = gateway.fresh_browser(browsers, attackers)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")
    mine = gateway.fresh_browser(browsers, own)
    assert not (await gateway.password(mine, CAROL)).startswith("/.gateway/challenge")


async def test_an_admin_ending_a_members_sessions_forgets_their_browsers(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    value = await gateway.remembered_sign_in(CAROL, browsers())
    dave = browsers()
    await gateway.remembered_sign_in(DAVE, dave)
    member = f"/.gateway/admin/example/members/{CAROL}"
    html = await (await dave.get(gateway.url(member))).text()
    done = await dave.post(
        gateway.url(member + "/sessions/end-all"),
        data={"csrf_token": csrf_from_page(html)},
        allow_redirects=False,
    )
    assert done.status == 303, await done.text()
    again = gateway.fresh_browser(browsers, value)
    assert (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")


async def test_a_password_alone_signing_out_forgets_no_browser(
    gateway: Gateway, browsers: Callable[[], aiohttp.ClientSession]
) -> None:
    """Review finding F2: a sign-out from a session that has only the password (stopped at the
    challenge) wiped the person's remembered browsers."""
    value = await gateway.remembered_sign_in(CAROL, browsers())
    stranger = browsers()
    assert (await gateway.password(stranger, CAROL)).startswith("/.gateway/challenge")
    page = await stranger.get(gateway.url(LOGOUT))
    out = await stranger.post(
        gateway.url(LOGOUT),
        data={"csrf_token": csrf_from_page(await page.text())},
        allow_redirects=False,
    )
    assert out.status == 303
    assert len(await gateway.store.list_remembered(CAROL, gateway.clock())) == 1
    again = gateway.fresh_browser(browsers, value)
    assert not (await gateway.password(again, CAROL)).startswith("/.gateway/challenge")
