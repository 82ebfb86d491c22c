"""Regulation of wrong answers: growing delays, then lockouts, per user+address, user and
address; passwords (portal and intercepted logins) counted like second factors."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import regulation
from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.policy.model import AttemptLimits
from tests.admin.helpers import browser
from tests.support import code_for, csrf_from_page, intercept_app, portal_app, portal_login

NOW = 1_800_000_000.0
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER = "carol@example.com"
OTHER = "dave@example.com"  # another user, never enrolled
DEFAULT = regulation.DEFAULT
WINDOW = DEFAULT.window.total_seconds()
# The test client is 127.0.0.1: as a trusted proxy its X-Forwarded-For names the address.
BEHIND_PROXY = {"trusted_proxies": ["127.0.0.1/32"]}


def _from(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


# --- the pure rules ------------------------------------------------------------------------


def test_lockout_table() -> None:
    """Each scope locks at its own limit and unlocks when enough failures leave the window."""
    old = NOW - 100
    assert regulation.lockout({"user_ip": [old] * 9}, NOW) is None  # delays long passed
    locked = regulation.lockout({"user_ip": [old + i for i in range(10)]}, NOW)
    assert locked is not None and locked.scope == "user_ip" and not locked.is_delay
    assert locked.until == old + WINDOW
    assert regulation.lockout({"user_ip": [NOW - WINDOW] * 10}, NOW) is None
    assert regulation.lockout({"user": [old] * 29, "ip": [old] * 49}, NOW) is None
    assert regulation.lockout({"user": [old] * 30}, NOW).scope == "user"  # type: ignore[union-attr]
    assert regulation.lockout({"ip": [old] * 50}, NOW).scope == "ip"  # type: ignore[union-attr]
    assert DEFAULT.per_user_and_address < DEFAULT.per_user < 100  # NIST SP 800-63B's ceiling
    assert DEFAULT.per_address < 100


def test_delays_grow_from_the_last_failure() -> None:
    """Five answers (one sign-in's worth) are free; then each waits twice as long as the last,
    up to a minute."""
    assert [regulation.delay_after(n, DEFAULT) for n in range(12)] == [
        0,
        0,
        0,
        0,
        0,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    assert regulation.lockout({"user_ip": [NOW - 1] * 4}, NOW) is None
    slow = regulation.lockout({"user_ip": [NOW - 30] * 4 + [NOW - 1]}, NOW)
    assert slow is not None and slow.is_delay and slow.until == NOW + 1
    assert regulation.lockout({"user_ip": [NOW - 30] * 4 + [NOW - 2]}, NOW) is None
    # only the user from this address is slowed: the user elsewhere and the address are not
    assert regulation.lockout({"user": [NOW] * 9, "ip": [NOW] * 9}, NOW) is None


def test_policy_numbers_are_used() -> None:
    strict = AttemptLimits(
        window=timedelta(minutes=5),
        per_user_and_address=2,
        per_user=3,
        per_address=4,
        free=0,
        first_delay=timedelta(seconds=10),
        max_delay=timedelta(seconds=10),
    )
    assert regulation.delay_after(1, strict) == 10
    slow = regulation.lockout({"user_ip": [NOW]}, NOW, strict)
    assert slow is not None and slow.is_delay and slow.until == NOW + 10
    locked = regulation.lockout({"user_ip": [NOW - 60, NOW - 50]}, NOW, strict)
    assert locked is not None and locked.scope == "user_ip" and locked.until == NOW - 60 + 300
    with pytest.raises(ValueError, match="per_user_and_address"):
        AttemptLimits(per_user_and_address=30, per_user=30)


def test_one_address_never_reaches_the_user_wide_lockout() -> None:
    """However an attacker at one address paces their guesses, the user-and-address lockout
    stops them before the user-wide limit: the user's other addresses stay open."""
    failures: list[float] = []
    now = NOW
    for _ in range(1000):
        now += 1
        found = regulation.lockout({"user_ip": failures, "user": failures}, now)
        if found is not None:
            now = max(now, found.until - 0.5)  # the attacker waits as little as possible
            continue
        failures.append(now)
        window = [at for at in failures if now - WINDOW < at <= now]
        assert len(window) < DEFAULT.per_user


# --- through the gateway ---------------------------------------------------------------------


def _users(tmp_path: Path) -> Path:
    users = tmp_path / "users.yaml"
    users.write_text(
        f"users:\n  {USER}:\n    password: '{hash_password('pw')}'\n"
        f"  {OTHER}:\n    password: '{hash_password('pw2')}'\n"
    )
    return users


async def _portal_gateway(
    make_gateway: Any, tmp_path: Path, clock: FixedClock, policy: str | None = None
) -> Any:
    policies = {"example.yaml": policy} if policy else None
    client = await make_gateway(
        {"app": portal_app("http://127.0.0.1:9", _users(tmp_path))},
        policies=policies,
        clock=clock,
        **BEHIND_PROXY,
    )
    runtime = client.app[RUNTIME]
    await runtime.store.put_enrolment(
        USER,
        "totp",
        {"secret": runtime.secrets.cipher.encrypt(SECRET, f"totp:{USER}"), "created": 1.0},
    )
    return client


async def _password(http: Any, ip: str, password: str = "pw", user: str = USER) -> Any:  # noqa: S107
    """The password step from `ip`, in the browser `http` (its cookies as they are)."""
    page = await http.get("/.gateway/login?rd=%2F", headers=_from(ip))
    token = csrf_from_page(await page.text())
    return await http.post(
        "/.gateway/login?rd=%2F",
        data={"csrf_token": token, "username": user, "password": password},
        headers=_from(ip),
        allow_redirects=False,
    )


async def _sign_in(client: Any, ip: str) -> Any:
    """The password step from `ip`, in a fresh browser."""
    client.session.cookie_jar.clear()
    return await _password(client, ip)


async def _challenge(client: Any, ip: str, http: Any = None) -> tuple[str, str]:
    """The password step from `ip` (in a fresh browser, or in `http` as it is), then the
    challenge page: where to answer, and its CSRF token."""
    signed_in = await (_sign_in(client, ip) if http is None else _password(http, ip))
    assert signed_in.status == 303, await signed_in.text()
    location = signed_in.headers["Location"]
    http = http or client
    token = csrf_from_page(await (await http.get(location, headers=_from(ip))).text())
    return location, token


async def _answer(client: Any, location: str, token: str, code: str, ip: str) -> Any:
    return await client.post(
        location,
        data={"csrf_token": token, "code": code},
        headers=_from(ip),
        allow_redirects=False,
    )


async def test_wrong_codes_slow_down_then_lock_out(
    make_gateway: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Five wrong codes end a sign-in. From then on each try must wait (2 s, 4 s, ...): an early
    one gets a 429 with Retry-After and is not even checked, the right code or password
    included. Ten wrong codes from one address lock the user out there until the window has
    passed, and the lockout is audited."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    ip = "198.51.100.7"
    location, token = await _challenge(client, ip)
    statuses = [(await _answer(client, location, token, "000000", ip)).status for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    early = await _sign_in(client, ip)
    assert early.status == 429 and early.headers["Retry-After"] == "2"
    assert "Try again in 2 seconds" in await early.text()
    clock.advance(2)
    location, token = await _challenge(client, ip)
    sixth = await _answer(client, location, token, "000000", ip)
    assert sixth.status == 401 and "Wait 4 seconds before the next try." in await sixth.text()
    early = await _answer(client, location, token, code_for(SECRET, at=clock.now), ip)
    assert early.status == 429 and early.headers["Retry-After"] == "4"
    statuses = []
    for _ in range(4):  # the 7th to the 10th, each after its delay
        clock.advance(61)
        response = await _answer(client, location, token, "000000", ip)
        statuses.append(response.status)
    assert statuses == [401, 401, 401, 429]
    assert "Too many wrong answers" in await response.text()
    clock.advance(61)
    refused = await _sign_in(client, ip)  # locked out: even the right password is refused
    assert refused.status == 429 and "Too many wrong answers" in await refused.text()
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    lockouts = [e for e in events if e["event"] == "lockout"]
    assert lockouts and lockouts[0]["scope"] == "user_ip" and lockouts[0]["user"] == USER
    assert sum(e["event"] == "failure" for e in events) == 10
    clock.advance(WINDOW)
    location, token = await _challenge(client, ip)
    ok = await _answer(client, location, token, code_for(SECRET, at=clock.now), ip)
    assert ok.status == 303


async def test_attacker_at_one_address_does_not_lock_out_the_user_elsewhere(
    make_gateway: Any, tmp_path: Path
) -> None:
    """An attacker who knows the password and guesses codes from one address is stopped there;
    the user at another address is neither slowed nor locked out."""
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    attacker, victim = "203.0.113.66", "192.0.2.10"
    locked = False
    for _ in range(40):
        signed_in = await _sign_in(client, attacker)
        if signed_in.status == 429:
            locked = "Too many wrong answers" in await signed_in.text()
            break
        location = signed_in.headers["Location"]
        page = await client.get(location, headers=_from(attacker))
        token = csrf_from_page(await page.text())
        await _answer(client, location, token, "000000", attacker)
        clock.advance(61)
    assert locked
    location, token = await _challenge(client, victim)
    ok = await _answer(client, location, token, code_for(SECRET, at=clock.now), victim)
    assert ok.status == 303


async def test_wrong_passwords_are_regulated_the_same_for_unknown_users(
    make_gateway: Any, tmp_path: Path
) -> None:
    """The portal's password form counts wrong passwords: after five, an early try is a 429
    before the password is checked (the right one too). A name that does not exist gets the
    same answers, so the delay tells nothing about which accounts exist."""
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    for name in (USER, "nobody@example.com"):
        statuses = [(await portal_login(client, name, "wrong")).status for _ in range(6)]
        assert statuses == [401] * 5 + [429], name
    assert (await portal_login(client, USER, "pw")).status == 429
    clock.advance(2)
    assert (await portal_login(client, USER, "pw")).status == 303


async def test_policy_sets_the_numbers(make_gateway: Any, tmp_path: Path) -> None:
    """A company's `attempts:` replaces the defaults: here no free tries and a lockout at 2."""
    policy = """
company: Example Company
members:
  domains: [example.com]
enforce_2fa: true
attempts:
  per_user_and_address: 2
  per_user: 5
  free: 0
  first_delay: 5s
  max_delay: 5s
"""
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock, policy)
    assert (await portal_login(client, USER, "wrong")).status == 401
    assert (await portal_login(client, USER, "wrong")).status == 429  # a 5 s wait already
    clock.advance(5)
    assert (await portal_login(client, USER, "wrong")).status == 401
    clock.advance(5)
    refused = await portal_login(client, USER, "pw")
    assert refused.status == 429 and "Too many wrong answers" in await refused.text()


async def test_intercepted_wrong_passwords_stop_reaching_the_application(
    make_gateway: Any, tmp_path: Path
) -> None:
    """In intercept mode the application judges passwords; the gateway counts its refusals and,
    while the user must wait, does not pass further guesses on to the application at all."""
    seen: list[str] = []

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append(str(form.get("password")))
        if form.get("password") == "right":
            response = web.Response(status=302, headers={"Location": "/"})
            response.set_cookie("legacy_session", "s1")
            return response
        return web.Response(status=302, headers={"Location": "/login"})

    upstream_app = web.Application()
    upstream_app.router.add_post("/login", login)
    upstream = TestServer(upstream_app)
    await upstream.start_server()
    try:
        clock = FixedClock(NOW)
        app = intercept_app(str(upstream.make_url("/")).rstrip("/"))
        app["intercept"]["login"]["failure"] = {"location": ["/login"]}
        client = await make_gateway({"app": app}, clock=clock)

        async def attempt(password: str) -> int:
            response = await client.post(
                "/login", data={"username": USER, "password": password}, allow_redirects=False
            )
            return int(response.status)

        assert [await attempt("wrong") for _ in range(5)] == [302] * 5
        assert await attempt("right") == 429
        assert seen == ["wrong"] * 5  # the sixth never reached the application
        clock.advance(2)
        assert await attempt("right") == 303  # on to the second factor
        assert seen[-1] == "right"
    finally:
        await upstream.close()


async def test_parallel_guesses_are_checked_one_at_a_time(
    make_gateway: Any, tmp_path: Path
) -> None:
    """Twenty wrong codes sent at once in one sign-in (on Redis the requests really interleave):
    answers are checked one at a time, so exactly five are counted before the sign-in ends,
    instead of all twenty passing the checks before any was counted."""
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    ip = "198.51.100.9"
    location, token = await _challenge(client, ip)
    answers = await asyncio.gather(
        *(_answer(client, location, token, "000000", ip) for _ in range(20))
    )
    statuses = sorted(answer.status for answer in answers)
    assert statuses.count(401) == 4 and statuses.count(429) == 1, statuses
    store = client.app[RUNTIME].store
    assert len(await store.failures_since(f"user_ip:{USER}|{ip}", 0)) == 5


def test_addresses_are_counted_by_what_one_host_can_hold() -> None:
    """An IPv6 host commonly holds a whole /64: counting /128s would give an attacker a fresh
    address per guess. IPv4 (also mapped into IPv6) counts per address."""
    assert regulation.address_of("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert regulation.address_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert regulation.address_of("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert regulation.address_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert regulation.address_of("192.0.2.7") == "192.0.2.7"
    assert regulation.address_of(None) == regulation.address_of("not an address") == "unknown"
    assert regulation.keys("u", "2001:db8::1")["user_ip"] == "user_ip:u|2001:db8::/64"


def test_wrong_second_factors_are_capped_per_day() -> None:
    """However the guesses are spread over addresses and windows, 50 wrong second factors of a
    user in a day lock the user out until the oldest is a day old."""
    spread = [NOW - 23 * 3600 + i * 1500 for i in range(50)]  # one every 25 minutes
    assert regulation.lockout({"user": spread[-5:], "user_day": spread[:-1]}, NOW) is None
    locked = regulation.lockout({"user_day": spread}, NOW)
    assert locked is not None and locked.scope == "user_day"
    assert locked.until == spread[0] + regulation.DAY


async def test_guesses_from_one_ipv6_network_share_a_count(
    make_gateway: Any, tmp_path: Path
) -> None:
    """Five wrong passwords, each from another address of one /64: the sixth, from yet another
    one, must wait like any sixth try from one address."""
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)

    async def attempt(ip: str, password: str) -> int:
        client.session.cookie_jar.clear()
        page = await client.get("/.gateway/login?rd=%2F", headers=_from(ip))
        answer = await client.post(
            "/.gateway/login?rd=%2F",
            data={
                "csrf_token": csrf_from_page(await page.text()),
                "username": USER,
                "password": password,
            },
            headers=_from(ip),
            allow_redirects=False,
        )
        return int(answer.status)

    statuses = [await attempt(f"2001:db8:5:6::{n + 1:x}", "wrong") for n in range(5)]
    assert statuses == [401] * 5
    assert await attempt("2001:db8:5:6:ffff::1", "pw") == 429
    assert await attempt("2001:db8:5:7::1", "pw") == 303  # another network: not slowed


# --- the user's own browsers and strangers spread over many addresses ----------------------


def test_a_known_browser_has_its_own_user_wide_count() -> None:
    """From a browser known to have signed in as the user, the user-wide limit counts that
    browser's wrong passwords and the user's wrong second factors, at the same number, and not
    every wrong answer for the user; its other scopes are those of any browser."""
    plain = regulation.counted("u", "192.0.2.1")
    known = regulation.counted("u", "192.0.2.1", "b" * 64)
    assert plain["user"] == ("user:u",) and "user_browser" not in plain
    assert "user" not in known
    assert known["user_browser"] == (regulation.browser_key("u", "b" * 64), "second:u")
    assert {k: v for k, v in known.items() if k != "user_browser"} == {
        k: v for k, v in plain.items() if k != "user"
    }
    flood = [NOW - 60] * 200  # strangers' wrong passwords, from anywhere
    assert regulation.lockout({"user": flood}, NOW) is not None
    assert regulation.lockout({"user_browser": [NOW - 60] * 29}, NOW) is None
    own = regulation.lockout({"user_browser": [NOW - 60] * 30}, NOW)
    assert own is not None and own.scope == "user_browser" and own.until == NOW - 60 + WINDOW
    # a wrong password is also recorded under the browser's own key; a wrong code is not
    password = regulation.recorded("u", "192.0.2.1", "b" * 64, password=True)
    code = regulation.recorded("u", "192.0.2.1", "b" * 64, password=False)
    assert regulation.browser_key("u", "b" * 64) in password and "second:u" not in password
    assert regulation.browser_key("u", "b" * 64) not in code and "second:u" in code
    assert regulation.recorded("u", "192.0.2.1", None, True) == list(
        regulation.keys("u", "192.0.2.1").values()
    )


async def _flood(client: Any, guesses: int, first: int = 1) -> list[int]:
    """Strangers' wrong passwords for the user, five from each of many addresses (so no
    address is ever slowed down), each in a fresh browser."""
    statuses = []
    for n in range(guesses):
        client.session.cookie_jar.clear()
        answer = await _password(client, f"203.0.113.{first + n // 5}", "wrong")
        statuses.append(answer.status)
    return statuses


async def _verified(client: Any, http: Any, ip: str, clock: FixedClock) -> int:
    """The password and the code in the browser `http` (its session, if any, gone by now, its
    browser id kept); the status of the code's answer."""
    _session_over(http)
    location, token = await _challenge(client, ip, http)
    clock.advance(30)  # a fresh code: each is accepted once
    return int((await _answer(http, location, token, code_for(SECRET, at=clock.now), ip)).status)


def _session_over(http: Any) -> None:
    """The browser's gateway session is over (it keeps its other cookies)."""
    http.cookie_jar.clear(lambda cookie: cookie.key == "gateway_session")


def _browser_id(http: Any) -> str:
    [cookie] = [c for c in http.cookie_jar if c.key == "gateway_browser"]
    return str(cookie.value)


async def test_strangers_everywhere_lock_out_new_browsers_but_not_the_users_own(
    make_gateway: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Strangers who know only the user name send wrong passwords from many addresses until the
    user is locked out everywhere: a new browser is refused even the right password, and so is
    a browser that signed in only as another user, or one with a made-up id. The browser the
    user signed in with before still gets in, password and code, from any address (and its
    second factor starts the user's counts again, as any does)."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    home, cafe = "192.0.2.10", "198.51.100.20"
    async with browser(client) as own, browser(client) as others:
        assert await _verified(client, own, home, clock) == 303
        assert (await _password(others, home, "pw2", OTHER)).status == 303
        await others.get("/.gateway/enrol", headers=_from(home))  # its id comes with this page
        others_id = _browser_id(others)
        clock.advance(3600)
        assert await _flood(client, DEFAULT.per_user) == [401] * DEFAULT.per_user
        for cookie in (None, others_id, "made-up-" + "x" * 32):
            client.session.cookie_jar.clear()
            if cookie is not None:
                client.session.cookie_jar.update_cookies({"gateway_browser": cookie})
            refused = await _password(client, cafe)
            assert refused.status == 429, cookie
            assert "Too many wrong answers" in await refused.text()
        assert await _verified(client, own, cafe, clock) == 303  # even from a new address
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    assert {e["scope"] for e in events if e["event"] == "lockout"} == {"user"}


async def test_the_users_own_browser_is_still_limited_per_address(
    make_gateway: Any, tmp_path: Path
) -> None:
    """A known browser is not exempt from the user-and-address limit: ten wrong passwords from
    one address (each after its delay) lock the user out there, the right password included,
    while the same browser elsewhere gets in."""
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    here, there = "192.0.2.10", "192.0.2.77"
    async with browser(client) as own:
        assert await _verified(client, own, here, clock) == 303
        _session_over(own)
        statuses = []
        for _ in range(DEFAULT.per_user_and_address):
            clock.advance(61)  # past any delay
            statuses.append((await _password(own, here, "wrong")).status)
        assert statuses == [401] * DEFAULT.per_user_and_address
        clock.advance(61)
        refused = await _password(own, here)
        assert refused.status == 429 and "Too many wrong answers" in await refused.text()
        assert await _verified(client, own, there, clock) == 303


async def test_a_stolen_browser_id_does_not_give_endless_guesses(
    make_gateway: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone who copies the user's browser id and guesses from many addresses is held to the
    user-wide number all the same: that browser's own count. The lockout is audited as such,
    and the user's other browsers are not locked out by it."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    async with browser(client) as own, browser(client) as thief:
        assert await _verified(client, own, "192.0.2.10", clock) == 303
        thief.cookie_jar.update_cookies({"gateway_browser": _browser_id(own)})
        statuses = []
        for n in range(DEFAULT.per_user):
            statuses.append((await _password(thief, f"203.0.113.{1 + n // 5}", "wrong")).status)
        assert statuses == [401] * DEFAULT.per_user
        refused = await _password(thief, "203.0.113.99")
        assert refused.status == 429 and "Too many wrong answers" in await refused.text()
        assert (await _sign_in(client, "198.51.100.20")).status == 429  # strangers' count too
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    assert [e["scope"] for e in events if e["event"] == "lockout"] == ["user_browser"]


async def test_user_name_variants_share_one_count(make_gateway: Any, tmp_path: Path) -> None:
    """Wrong passwords under variants of one name (case, surrounding space, full-width letters)
    count against one user: after five from one address the next try waits (429), whatever
    spelling it uses (the class of Authelia CVE-2025-24806)."""
    clock = FixedClock(NOW)
    client = await _portal_gateway(make_gateway, tmp_path, clock)
    ip = "198.51.100.9"
    local, _, domain = USER.partition("@")
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in local)
    variants = [USER.upper(), f" {USER} ", f"{wide}@{domain}", USER.title(), USER]
    for variant in variants:
        client.session.cookie_jar.clear()
        assert (await _password(client, ip, "wrong", variant)).status == 401
    client.session.cookie_jar.clear()
    assert (await _password(client, ip, "wrong", USER.swapcase())).status == 429
