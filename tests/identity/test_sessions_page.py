"""The person's own "Where you're signed in" page (/.gateway/account/sessions; issue 18, part 1):
every live session of theirs with its browser and system, address, sign-in time and factor and
last sighting, this one marked; one ended, or all the others; never another person's. Over
HTTP, portal mode, a fixed clock, on SQLite and on Redis; then two gateway instances on one
Redis: a session ended on one is refused by the other within SessionManager.recheck_after."""

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
from gateway.policy import load_policy_dir
from gateway.sessions import HANDLE_LENGTH, RECHECK_AFTER, Level, storage_key
from gateway.settings import settings_from_dict
from tests.support import code_for, csrf_from_page, enrol_totp, portal_app, settings_dict

T0 = 1_700_000_000.0
CAROL, DAVE = "carol@example.com", "dave@example.com"
PASSWORDS = {CAROL: "carol-password", DAVE: "dave-password"}
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
POLICY = """
company: Example Company
members:
  domains: [example.com]
account_type: partner
methods:
  allowed: [totp]
enforce_2fa: true
session:
  idle_timeout: 8h
  lifetime: 12h
"""
HANDLE_RE = re.compile(r'name="session" value="([^"]*)"')
SESSIONS = "/.gateway/account/sessions"
LOGOUT = "/.gateway/logout"  # its page has a CSRF token for any session

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def settings(tmp_path: Path, upstream_url: str, store: str | None) -> dict[str, Any]:
    users = tmp_path / "users.yaml"
    users.write_text(
        "users:\n"
        + "".join(
            f"  {user}:\n    password: '{hash_password(password)}'\n"
            for user, password in PASSWORDS.items()
        )
    )
    extra = {"store": store} if store else {}
    return settings_dict(
        tmp_path, {"app": portal_app(upstream_url, users)}, {"example.yaml": POLICY}, **extra
    )


async def instance(aiohttp_client: MakeClient, data: dict[str, Any], clock: FixedClock) -> Client:
    config = settings_from_dict(data, source=Path(data["policy_dir"]).parent / "gateway.yaml")
    policy = load_policy_dir(config.policy_dir, known_apps=[a.name for a in config.applications])
    return await aiohttp_client(create_app(build_runtime(config, policy, clock=clock)))


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[[str], aiohttp.ClientSession]]:
    """Browsers of their own (cookies, User-Agent), closed at the end."""
    made: list[aiohttp.ClientSession] = []

    def make(agent: str) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"User-Agent": agent}
        )
        made.append(session)
        return session

    yield make
    for session in made:
        await session.close()


class Gateway:
    """One gateway (a test client for its server) and the secrets of its users."""

    def __init__(self, client: Client, clock: FixedClock) -> None:
        self.client = client
        self.clock = clock
        self.secrets: dict[str, str] = {}

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    @property
    def runtime(self) -> Any:
        return self.client.server.app[RUNTIME]

    async def sign_in(self, browser: aiohttp.ClientSession, user: str) -> None:
        """The password, then the authenticator app (set up at the first sign-in)."""
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
        location = login.headers["Location"]
        if user not in self.secrets:
            self.secrets[user], _ = await enrol_totp(_At(self, browser), location, self.clock)
            return
        self.clock.advance(30)  # a code of a new time step (used steps are refused)
        answer = await self.post(
            browser, location, location, code=code_for(self.secrets[user], self.clock())
        )
        assert answer.status == 303, await answer.text()

    async def post(
        self, browser: aiohttp.ClientSession, page: str, target: str, **fields: str
    ) -> aiohttp.ClientResponse:
        html = await (await browser.get(self.url(page))).text()
        return await browser.post(
            self.url(target),
            data={"csrf_token": csrf_from_page(html), **fields},
            allow_redirects=False,
        )

    async def page(self, browser: aiohttp.ClientSession) -> str:
        answer = await browser.get(self.url(SESSIONS), allow_redirects=False)
        assert answer.status == 200, answer.headers.get("Location")
        return await answer.text()

    async def signed_in(self, browser: aiohttp.ClientSession) -> bool:
        answer = await browser.get(self.url("/"), allow_redirects=False)
        return answer.status == 200


class _At:
    """A browser seen as tests.support's helpers expect a client: paths on this gateway."""

    def __init__(self, gateway: Gateway, browser: aiohttp.ClientSession) -> None:
        self.gateway, self.browser = gateway, browser

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.browser.get(self.gateway.url(path), **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.browser.post(self.gateway.url(path), **kwargs)


@pytest.fixture
async def gateway(
    aiohttp_client: MakeClient, tmp_path: Path, upstream_url: str, store_url: str | None
) -> Gateway:
    clock = FixedClock(T0)
    return Gateway(
        await instance(aiohttp_client, settings(tmp_path, upstream_url, store_url), clock), clock
    )


def rows(html: str) -> list[str]:
    """The page's sessions, each as its text, this one first."""
    listed = html.split('class="sessions"', 1)[1].split("</main>", 1)[0]  # not the footer
    items = re.findall(r"<li[^>]*>(.*?)</li>", listed, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", item).split()) for item in items]


def audited(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    return [line for line in lines if line["event"] == event]


async def test_the_page_lists_each_browser_with_this_one_marked(
    gateway: Gateway, browsers: Callable[[str], aiohttp.ClientSession]
) -> None:
    """Two browsers of one person: each lists both, its own first and marked, with browser
    and system, address, sign-in time and factor, last seen; no session id is on the page."""
    firefox, safari = browsers(FIREFOX), browsers(SAFARI)
    await gateway.sign_in(firefox, CAROL)
    gateway.clock.advance(3600)
    await gateway.sign_in(safari, CAROL)
    gateway.clock.advance(120)
    html = await gateway.page(firefox)
    found = rows(html)
    assert len(found) == 2, found
    assert found[0].startswith("Firefox 133 on Windows 10 This browser")
    assert "Signed in 1 hour ago" in found[0] and "from 127.0.0.1" in found[0]
    assert "with authenticator app" in found[0] and "Last seen just now" in found[0]
    assert found[1].startswith("Mobile Safari 17 on iOS 17") and "This browser" not in found[1]
    assert "Signed in 2 minutes ago" in found[1] and "Last seen 2 minutes ago" in found[1]
    assert "Sign out everywhere else" in html
    handles = HANDLE_RE.findall(html)
    assert len(handles) == 1 and re.fullmatch(f"[0-9a-f]{{{HANDLE_LENGTH}}}", handles[0])
    for browser in (firefox, safari):
        for cookie in browser.cookie_jar:
            assert cookie.value not in html or len(cookie.value) < 16
    for session_id in [c.value for b in (firefox, safari) for c in b.cookie_jar]:
        assert storage_key(session_id) not in html
    mine = rows(await gateway.page(safari))
    assert mine[0].startswith("Mobile Safari 17 on iOS 17 This browser")
    account = await (await firefox.get(gateway.url("/.gateway/account"))).text()
    assert f'href="{SESSIONS}"' in account


async def test_ending_another_session_signs_that_browser_out_and_is_audited(
    gateway: Gateway,
    browsers: Callable[[str], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    firefox, safari = browsers(FIREFOX), browsers(SAFARI)
    await gateway.sign_in(firefox, CAROL)
    await gateway.sign_in(safari, CAROL)
    assert await gateway.signed_in(safari)
    handle = HANDLE_RE.findall(await gateway.page(firefox))[0]
    caplog.set_level("INFO", logger="gateway.audit")
    ended = await gateway.post(firefox, LOGOUT, SESSIONS + "/end", session=handle)
    assert ended.status == 303 and ended.headers["Location"] == SESSIONS
    html = await gateway.page(firefox)
    assert "The session in Mobile Safari 17 on iOS 17 was ended." in html
    assert len(rows(html)) == 1 and "You are not signed in anywhere else." in html
    assert not await gateway.signed_in(safari)
    assert await gateway.signed_in(firefox)
    [line] = audited(caplog, "session_ended")
    assert line["user"] == CAROL and line["session"] == handle and line["by"] == "self"
    assert line["ip"] == "127.0.0.1"
    again = await gateway.post(firefox, LOGOUT, SESSIONS + "/end", session=handle)
    assert again.status == 303
    assert "That session had already ended." in await gateway.page(firefox)


async def test_ending_all_the_others_keeps_this_one(
    gateway: Gateway,
    browsers: Callable[[str], aiohttp.ClientSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    firefox, safari, chrome, daves = (
        browsers(FIREFOX),
        browsers(SAFARI),
        browsers(CHROME),
        browsers(CHROME),
    )
    for browser in (firefox, safari, chrome):
        await gateway.sign_in(browser, CAROL)
    await gateway.sign_in(daves, DAVE)
    assert len(rows(await gateway.page(chrome))) == 3
    caplog.set_level("INFO", logger="gateway.audit")
    ended = await gateway.post(chrome, LOGOUT, SESSIONS + "/end-others")
    assert ended.status == 303
    html = await gateway.page(chrome)
    assert "2 other sessions were ended." in html
    assert [row.split(" This browser")[0] for row in rows(html)] == ["Chrome 131 on Mac OS X 10"]
    assert not await gateway.signed_in(firefox) and not await gateway.signed_in(safari)
    assert await gateway.signed_in(chrome) and await gateway.signed_in(daves)
    [line] = audited(caplog, "sessions_ended")
    assert line["user"] == CAROL and line["sessions_ended"] == 2


async def test_another_persons_session_is_never_listed_nor_ended(
    gateway: Gateway, browsers: Callable[[str], aiohttp.ClientSession]
) -> None:
    """Dave's page lists Dave's only; Carol's handle posted from Dave's browser ends nothing;
    nor does this browser's own handle (signing out does that)."""
    carol, carol_too, dave = browsers(FIREFOX), browsers(CHROME), browsers(SAFARI)
    await gateway.sign_in(carol, CAROL)
    await gateway.sign_in(carol_too, CAROL)
    await gateway.sign_in(dave, DAVE)
    daves = await gateway.page(dave)
    assert len(rows(daves)) == 1 and CAROL not in daves
    carols_handle = HANDLE_RE.findall(await gateway.page(carol_too))[0]
    answer = await gateway.post(dave, LOGOUT, SESSIONS + "/end", session=carols_handle)
    assert answer.status == 303
    assert "That session had already ended." in await gateway.page(dave)
    assert await gateway.signed_in(carol)
    own = gateway.runtime.sessions.handle(storage_key(_session_id(gateway, carol)))
    answer = await gateway.post(carol, LOGOUT, SESSIONS + "/end", session=own)
    assert "To end this session, sign out." in await gateway.page(carol)
    assert await gateway.signed_in(carol)


def _session_id(gateway: Gateway, browser: aiohttp.ClientSession) -> str:
    name = gateway.runtime.settings.session_cookie
    return next(c.value for c in browser.cookie_jar if c.key.endswith(name))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"session": ""},
        {"session": "x" * 5000},
        {"session": "é\u0000<script>"},
        {"session": "0" * 16},
        {"session": ["a", "b"]},
    ],
)
async def test_no_input_makes_a_500(
    gateway: Gateway, browsers: Callable[[str], aiohttp.ClientSession], fields: dict[str, Any]
) -> None:
    carol = browsers(FIREFOX)
    await gateway.sign_in(carol, CAROL)
    html = await (await carol.get(gateway.url(LOGOUT))).text()
    data: list[tuple[str, str]] = [("csrf_token", csrf_from_page(html))]
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            data.append((name, one))
    for target in ("/end", "/end-others"):
        answer = await carol.post(gateway.url(SESSIONS + target), data=data, allow_redirects=False)
        assert answer.status == 303, await answer.text()
    assert await gateway.signed_in(carol)


async def test_without_a_verified_session_or_csrf_token_nothing_happens(
    gateway: Gateway, browsers: Callable[[str], aiohttp.ClientSession]
) -> None:
    stranger, carol, half = browsers(CHROME), browsers(FIREFOX), browsers(SAFARI)
    await gateway.sign_in(carol, CAROL)
    handle = HANDLE_RE.findall(await gateway.page(carol)) or [""]
    answer = await stranger.get(gateway.url(SESSIONS), allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/challenge")
    # a password alone (no second factor yet) does not see the page or end anything
    await gateway.sign_in(half, CAROL)
    await gateway.post(carol, LOGOUT, SESSIONS + "/end-others")
    page = await half.get(gateway.url("/.gateway/login?rd=%2F"))
    await half.post(
        gateway.url("/.gateway/login?rd=%2F"),
        data={
            "csrf_token": csrf_from_page(await page.text()),
            "username": CAROL,
            "password": PASSWORDS[CAROL],
        },
        allow_redirects=False,
    )
    answer = await half.get(gateway.url(SESSIONS), allow_redirects=False)
    assert answer.status == 303 and answer.headers["Location"].startswith("/.gateway/challenge")
    html = await (await half.get(gateway.url("/.gateway/logout"))).text()
    token = csrf_from_page(html)
    for target in ("/end", "/end-others"):
        answer = await half.post(
            gateway.url(SESSIONS + target),
            data={"csrf_token": token, "session": handle[0]},
            allow_redirects=False,
        )
        assert answer.status == 303
        assert answer.headers["Location"].startswith("/.gateway/challenge")
    assert await gateway.signed_in(carol)
    # no CSRF token: refused
    answer = await carol.post(gateway.url(SESSIONS + "/end-others"), allow_redirects=False)
    assert answer.status == 400


async def test_a_session_from_before_shows_an_unknown_browser(
    gateway: Gateway, browsers: Callable[[str], aiohttp.ClientSession]
) -> None:
    """A session signed in before the gateway kept browsers and addresses is listed too."""
    carol = browsers(FIREFOX)
    await gateway.sign_in(carol, CAROL)
    sessions = gateway.runtime.sessions
    old = sessions.new("app")
    old.user, old.level, old.verified_at, old.second_factor = CAROL, Level.VERIFIED, T0, "totp"
    await sessions.save(old)
    found = rows(await gateway.page(carol))
    assert len(found) == 2
    assert found[1].startswith("unknown browser") and "from unknown address" in found[1]


async def test_a_session_ended_on_one_instance_is_refused_by_the_other_within_the_bound(
    aiohttp_client: MakeClient,
    tmp_path: Path,
    upstream_url: str,
    redis_url: str,
    browsers: Callable[[str], aiohttp.ClientSession],
) -> None:
    """Gateways A and B on one Redis, the same settings. Safari, signed in on B, has just been
    let through there (B remembers it for recheck_after); Firefox ends it on A. A refuses it
    at once; B within recheck_after of its own reading."""
    clock = FixedClock(T0)
    data = settings(tmp_path, upstream_url, redis_url)
    a = Gateway(await instance(aiohttp_client, data, clock), clock)
    b = Gateway(await instance(aiohttp_client, data, clock), clock)
    b.secrets = a.secrets
    ticks = [0.0]
    b.runtime.sessions.monotonic = lambda: ticks[0]
    firefox, safari = browsers(FIREFOX), browsers(SAFARI)
    await a.sign_in(firefox, CAROL)
    await b.sign_in(safari, CAROL)
    assert await b.signed_in(safari)  # read from the store, remembered by B
    on_a = rows(await a.page(firefox))
    assert len(on_a) == 2 and on_a[1].startswith("Mobile Safari 17")
    handle = HANDLE_RE.findall(await a.page(firefox))[0]
    ended = await a.post(firefox, LOGOUT, SESSIONS + "/end", session=handle)
    assert ended.status == 303
    assert not await a.signed_in(safari)
    ticks[0] += RECHECK_AFTER - 0.1
    assert await b.signed_in(safari)  # B's memory, within the documented bound
    ticks[0] += 0.1
    assert not await b.signed_in(safari)
    assert await b.signed_in(firefox)


@pytest.mark.parametrize(
    ("agent", "words"),
    [
        (FIREFOX, "Firefox 133 on Windows 10"),
        (SAFARI, "Mobile Safari 17 on iOS 17"),
        (CHROME, "Chrome 131 on Mac OS X 10"),
        ("curl/8.4.0", "curl 8"),
        ("", "unknown browser"),
        (None, "unknown browser"),
        ("\u0000" * 300, "unknown browser"),
    ],
)
def test_browser_and_system_in_words(agent: str | None, words: str) -> None:
    from gateway.sessions import browser_words

    assert browser_words(agent) == words
