"""Two `gateway run` processes on one redis-server, in front of the demo's legacy application,
behave as one gateway: sessions, used TOTP steps, codes, wrong answers and the enforcement
ratchet are shared. A browser's cookies go to both (cookies are per host, not per port)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redisserver import RedisServer
from tests.scale.flows import (
    accepted,
    app_login,
    app_logout,
    browser,
    cookie,
    enrol_totp,
    form_page,
    outbox_senders,
    post,
    race_email_code,
)
from tests.support import (
    GatewayProcess,
    code_for,
    csrf_from_page,
    free_port,
    intercept_app,
    settings_dict,
    wait_http,
)

ACCOUNTS = {
    "alice@example.com": "alice-password",
    "bob@example.com": "bob-password",
    "erin@example.com": "erin-password",
    "carol@globex.example": "carol-password",
}
EXAMPLE = """
company: Example Company
members:
  domains: [example.com]
methods:
  allowed: [totp, email]
  codes:
    resend_after: 1s
enforce_2fa: true
"""
GLOBEX = """
company: Globex
members:
  domains: [globex.example]
account_type: partner
deferral: 48h
enforce_2fa: {enforced}
"""
LEGACY = (
    "import sys, json\nfrom aiohttp import web\nfrom gateway.demo.legacy import create_legacy_app\n"
    "web.run_app(create_legacy_app(json.loads(sys.argv[2])), host='127.0.0.1', "
    "port=int(sys.argv[1]), print=None)\n"
)


@pytest.fixture(scope="module")
def legacy() -> Iterator[str]:
    """The demo's legacy application in a process of its own, on a real port."""
    import json

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LEGACY, str(port), json.dumps(ACCOUNTS)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/login", process=process)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def pair(
    legacy: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, GatewayProcess, Path, Path]]:
    """Gateways A and B: the same settings (store, secrets, senders) but for their ports and
    one policy difference: A's file enforces Globex, B's does not. B starts first."""
    tmp = tmp_path_factory.mktemp("pair")
    db = 4095  # this module's own database on the shared redis-server
    with redis_server.client(db) as client:
        client.flushdb()
    outbox = tmp / "outbox.jsonl"
    settings: dict[str, Any] = settings_dict(
        tmp,
        {"legacy": intercept_app(legacy)},
        {"example.yaml": EXAMPLE, "globex.yaml": GLOBEX.format(enforced="false")},
        store=redis_server.url(db),
        senders=outbox_senders(outbox),
    )
    b = GatewayProcess.run(tmp, settings, name="b")
    a_policies = tmp / "a-policies"
    a_policies.mkdir()
    (a_policies / "example.yaml").write_text(EXAMPLE)
    (a_policies / "globex.yaml").write_text(GLOBEX.format(enforced="true"))
    a_settings = {**settings, "listen": {"host": "127.0.0.1", "port": free_port()}}
    a_settings["policy_dir"] = str(a_policies)
    try:
        a = GatewayProcess.run(tmp, a_settings, name="a")
    except BaseException:
        b.stop()
        raise
    yield a, b, outbox, tmp
    a.stop()
    b.stop()


async def test_session_totp_steps_and_logout_are_shared(pair: Any) -> None:
    """Enrolled and verified on A, the session works on B; logout on B ends it on A; signing in
    again, the TOTP code used on A is refused on B, and a fresh one is accepted there."""
    a, b, _, _ = pair
    async with browser() as session:
        location = await app_login(session, a.url, "alice@example.com", "alice-password")
        assert location.startswith("/.gateway/enrol")
        secret, used = await enrol_totp(session, a.url + location)
        async with session.get(f"{b.url}/") as home:
            assert home.status == 200
            assert "Welcome, alice@example.com" in await home.text()
        copied = cookie(session, "gateway_session")
        await app_logout(session, b.url)
    async with browser() as other:  # a copy of the cookie is dead on A too
        headers = {"Cookie": f"gateway_session={copied}"}
        async with other.get(f"{a.url}/", headers=headers, allow_redirects=False) as answer:
            assert answer.status in (302, 303)
            assert "Welcome" not in await answer.text()
    async with browser() as session:
        location = await app_login(session, a.url, "alice@example.com", "alice-password")
        assert location.startswith("/.gateway/challenge")
        token = csrf_from_page(await form_page(session, b.url + location))
        status, _, text = await post(session, b.url + location, token, code=used)
        assert status == 401 and "already been used" in text
        status, target, _ = await post(
            session, b.url + location, token, code=code_for(secret, offset_steps=1)
        )
        assert status == 303 and target == "/"


async def test_wrong_answers_on_both_add_up_to_one_lockout(pair: Any) -> None:
    """Wrong codes sent alternately to A and B count together: the fifth ends the sign-in, and
    the right code is then refused on either."""
    a, b, _, _ = pair
    async with browser() as session:
        location = await app_login(session, a.url, "erin@example.com", "erin-password")
        secret, _ = await enrol_totp(session, a.url + location)
        await app_logout(session, a.url)
        location = await app_login(session, b.url, "erin@example.com", "erin-password")
        token = csrf_from_page(await form_page(session, a.url + location))
        statuses = []
        for attempt in range(5):
            base = (a, b)[attempt % 2].url
            status, _, text = await post(session, base + location, token, code="000000")
            statuses.append(status)
        assert statuses == [401, 401, 401, 401, 429]
        assert "Too many wrong codes" in text
        late, _, _ = await post(
            session, b.url + location, token, code=code_for(secret, offset_steps=1)
        )
        assert late != 303


async def test_an_email_code_is_used_once_across_instances(pair: Any) -> None:
    """A code sent through A, submitted to A and B at once (three times each): exactly one
    submission signs in."""
    a, b, outbox, _ = pair
    async with browser() as session:
        answers = await race_email_code(
            session, [a.url, b.url] * 3, ("bob@example.com", "bob-password"), outbox
        )
    assert accepted(answers) == 1, [answer[:2] for answer in answers]


async def test_enforcement_by_a_holds_on_b(pair: Any) -> None:
    """A's policy enforces Globex and records it in the shared store: B, whose own file says
    enforce_2fa: false, offers a Globex member no "Remind me later", and `gateway companies
    status` with B's settings shows the store's enforcement."""
    _a, b, _, tmp = pair
    async with browser() as session:
        location = await app_login(session, b.url, "carol@globex.example", "carol-password")
        page = await form_page(session, b.url + location)
        assert "Two-step" in page or "authenticator" in page.lower()
        assert "Remind me" not in page
    status = subprocess.run(
        [sys.executable, "-m", "gateway", "companies", "status", "-c", str(tmp / "b.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    globex = next(line for line in status.stdout.splitlines() if line.startswith("globex"))
    assert " false " in globex and " yes" in globex.lower(), status.stdout
