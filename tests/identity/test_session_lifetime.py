"""Verified sessions end server-side: after the idle timeout, at the absolute lifetime (both per
company), at logout (every session of the user), and when an operator resets the user's 2FA."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.sessions import RECHECK_AFTER
from tests.support import code_for, csrf_from_page, portal_app, settings_dict

NOW = 1_800_000_000.0
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USER = "carol@example.com"

POLICY = """
company: Example Company
members:
  domains: [example.com]
enforce_2fa: true
session:
  idle_timeout: {idle}
  lifetime: {lifetime}
"""


async def _upstream() -> TestServer:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.headers.get('Remote-User')}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    server = TestServer(app)
    await server.start_server()
    return server


async def _gateway(
    make_gateway: Any,
    tmp_path: Path,
    upstream: TestServer,
    clock: FixedClock,
    idle: str = "30m",
    lifetime: str = "12h",
) -> Any:
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_password('pw')}'\n")
    client = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")).rstrip("/"), users)},
        policies={"example.yaml": POLICY.format(idle=idle, lifetime=lifetime)},
        clock=clock,
    )
    runtime = client.app[RUNTIME]
    await runtime.store.put_enrolment(
        USER,
        "totp",
        {"secret": runtime.secrets.cipher.encrypt(SECRET, f"totp:{USER}"), "created": 1.0},
    )
    return client


async def _verify(browser: Any, clock: FixedClock) -> None:
    """Password, then the TOTP code, in this browser."""
    page = await browser.get("/.gateway/login?rd=%2F")
    signed_in = await browser.post(
        "/.gateway/login?rd=%2F",
        data={"csrf_token": csrf_from_page(await page.text()), "username": USER, "password": "pw"},
        allow_redirects=False,
    )
    location = signed_in.headers["Location"]
    assert location.startswith("/.gateway/challenge"), location
    page = await browser.get(location)
    done = await browser.post(
        location,
        data={"csrf_token": csrf_from_page(await page.text()), "code": code_for(SECRET, clock.now)},
        allow_redirects=False,
    )
    assert done.status == 303, await done.text()


async def _where(browser: Any, path: str = "/") -> str:
    """ "upstream" when the request was forwarded, else where the gateway sent the browser."""
    response = await browser.get(path, allow_redirects=False)
    if response.status == 200:
        assert await response.text() == f"hello {USER}"
        return "upstream"
    assert response.status == 303
    return str(response.headers["Location"]).split("?")[0]


async def test_idle_timeout_ends_the_session(make_gateway: Any, tmp_path: Path) -> None:
    upstream = await _upstream()
    try:
        clock = FixedClock(NOW)
        client = await _gateway(make_gateway, tmp_path, upstream, clock, idle="10m")
        await _verify(client, clock)
        assert await _where(client) == "upstream"
        clock.advance(9 * 60)
        assert await _where(client) == "upstream"  # activity: the idle clock starts again
        clock.advance(9 * 60)
        assert await _where(client) == "upstream"
        clock.advance(10 * 60 + 1)
        assert await _where(client) == "/.gateway/login"
    finally:
        await upstream.close()


async def test_absolute_lifetime_ends_an_active_session(make_gateway: Any, tmp_path: Path) -> None:
    upstream = await _upstream()
    try:
        clock = FixedClock(NOW)
        client = await _gateway(make_gateway, tmp_path, upstream, clock, idle="30m", lifetime="1h")
        await _verify(client, clock)
        for _ in range(5):  # busy every 10 minutes: never idle
            clock.advance(10 * 60)
            assert await _where(client) == "upstream"
        clock.advance(10 * 60)  # one hour after the second factor
        assert await _where(client) == "/.gateway/login"
    finally:
        await upstream.close()


async def test_logout_ends_every_session_of_the_user(
    make_gateway: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Signing out in one browser signs the user out of the others too, on the server; the
    sign-out is audited."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    upstream = await _upstream()
    try:
        clock = FixedClock(NOW)
        client = await _gateway(make_gateway, tmp_path, upstream, clock)
        await _verify(client, clock)
        async with ClientSession(
            base_url=str(client.make_url("")), cookie_jar=CookieJar(unsafe=True)
        ) as other:
            clock.advance(31)  # the next TOTP step: each code is accepted once
            await _verify(other, clock)
            assert await _where(other) == "upstream"
            page = await client.get("/.gateway/logout")
            out = await client.post(
                "/.gateway/logout",
                data={"csrf_token": csrf_from_page(await page.text())},
                allow_redirects=False,
            )
            assert out.status == 303
            assert await _where(client) == "/.gateway/login"
            assert await _where(other) == "/.gateway/login"
            events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
            out_lines = [e for e in events if e["event"] == "sign_out"]
            assert len(out_lines) == 1 and out_lines[0]["user"] == USER
            assert out_lines[0]["sessions_ended"] == 2
    finally:
        await upstream.close()


async def test_reset_ends_sessions_and_the_user_enrols_again(
    make_gateway: Any, tmp_path: Path
) -> None:
    """`gateway users reset` removes the factors and ends the sessions (seen by a running gateway
    within RECHECK_AFTER seconds); the next sign-in goes to enrolment."""
    upstream = await _upstream()
    try:
        clock = FixedClock(NOW)
        client = await _gateway(make_gateway, tmp_path, upstream, clock)
        await _verify(client, clock)
        assert await _where(client) == "upstream"
        config = tmp_path / "cli.yaml"
        data = settings_dict(tmp_path / "cli", {"app": portal_app("http://127.0.0.1:9", config)})
        data["store"] = client.app[RUNTIME].settings.store
        data["audit"] = {"to": "file", "path": str(tmp_path / "audit.log")}
        config.write_text(yaml.safe_dump(data))
        store = client.app[RUNTIME].store
        await store.put_deferral(USER, "example", NOW, NOW + 86400)  # from before enrolling
        code = await asyncio.to_thread(
            main,
            ["users", "reset", USER.upper(), "-c", str(config), "--reason", "lost phone", "--yes"],
        )
        assert code == 0
        assert await store.get_deferral(USER) is None  # or the password alone would let them in
        lines = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
        reset = [line for line in lines if line["event"] == "reset"]
        assert len(reset) == 1 and reset[0]["user"] == USER and reset[0]["company"] == "example"
        assert reset[0]["reason"] == "lost phone" and reset[0]["methods"] == ["totp"]
        sessions = client.app[RUNTIME].sessions
        sessions.monotonic = lambda: time.monotonic() + RECHECK_AFTER  # the bound has passed
        assert await _where(client) == "/.gateway/login"
        page = await client.get("/.gateway/login?rd=%2F")
        signed_in = await client.post(
            "/.gateway/login?rd=%2F",
            data={
                "csrf_token": csrf_from_page(await page.text()),
                "username": USER,
                "password": "pw",
            },
            allow_redirects=False,
        )
        assert signed_in.headers["Location"].startswith("/.gateway/enrol")
        refused = await asyncio.to_thread(
            main, ["users", "reset", USER, "-c", str(config), "--yes"]
        )
        assert refused == 2  # no reason given
    finally:
        await upstream.close()
