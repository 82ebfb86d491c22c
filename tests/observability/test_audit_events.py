"""Each security event of a flow is one audit line with its user, company, client address,
request id and application, under the stable names of docs/audit-log.md."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.clock import FixedClock
from gateway.keys import RUNTIME
from gateway.store import open_store
from tests.observability.conftest import PASSWORD, USER, AuditLines
from tests.support import (
    code_for,
    csrf_from_page,
    intercept_app,
    portal_app,
    portal_login,
    secret_from_page,
    settings_dict,
)

T0 = 1_800_000_000.0
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CLIENT = "198.51.100.7"  # the address the trusted proxy (the test client) names
PROXIED = {"trusted_proxies": ["127.0.0.1/32"]}
FROM = {"X-Forwarded-For": CLIENT}
REQUEST_ID = re.compile(r"[0-9a-f]{16}")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ENFORCED = """
company: Example Company
members:
  domains: [example.com]
enforce_2fa: true
methods:
  allowed: [totp, recovery]
"""
PARTNER = """
company: Example Company
members:
  domains: [example.com]
account_type: partner
enforce_2fa: false
"""
STRICT = """
company: Example Company
members:
  domains: [example.com]
enforce_2fa: true
attempts: {per_user_and_address: 2, per_user: 5, per_address: 10}
"""


def assert_request_line(line: dict[str, Any], application: str = "app") -> None:
    """The fields every line written during a request carries."""
    assert ISO_UTC.fullmatch(line["time"]), line
    assert line["user"] == USER and line["company"] == "example", line
    assert line["ip"] == CLIENT and line["application"] == application, line
    assert REQUEST_ID.fullmatch(line["request_id"]), line
    assert list(line)[:7] == ["time", "event", "user", "company", "ip", "request_id", "application"]


async def _enrol_totp(client: Any, clock: FixedClock) -> tuple[Any, str]:
    page = await client.get("/.gateway/enrol?method=totp&rd=%2F", headers=FROM)
    html = await page.text()
    secret = secret_from_page(html)
    wrong = await client.post(
        "/.gateway/enrol?method=totp&rd=%2F",
        data={"csrf_token": csrf_from_page(html), "code": "000000"},
        headers=FROM,
        allow_redirects=False,
    )
    assert wrong.status == 400
    done = await client.post(
        "/.gateway/enrol?method=totp&rd=%2F",
        data={"csrf_token": csrf_from_page(html), "code": code_for(secret, at=clock.now)},
        headers=FROM,
        allow_redirects=False,
    )
    return done, secret


async def test_portal_sign_in_enrolment_and_challenge(
    make_gateway: Any, upstream: TestServer, users: Path, audited: AuditLines
) -> None:
    """Password refused and accepted, a wrong code at enrolment, the factor added, the second
    factor accepted, recovery codes made and made again, then at the next sign-in a replayed
    code: each is one line, every one with the request's user, company, address and id."""
    clock = FixedClock(T0)
    client = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)},
        policies={"example.yaml": ENFORCED},
        clock=clock,
        **PROXIED,
    )
    client.session.headers.update(FROM)
    refused = await portal_login(client, USER, "not-the-password")
    assert refused.status == 401
    assert (await portal_login(client, USER, PASSWORD)).status == 303
    done, secret = await _enrol_totp(client, clock)
    assert done.status == 303 and done.headers["Location"].startswith("/.gateway/recovery")
    codes_page = await client.get(done.headers["Location"])  # the new codes, shown once
    assert codes_page.status == 200
    codes_page = await client.get(done.headers["Location"])  # then "make new codes"
    again = await client.post(
        "/.gateway/recovery?rd=%2F",
        data={"csrf_token": csrf_from_page(await codes_page.text())},
        allow_redirects=False,
    )
    assert again.status == 303

    password = audited.one("failure", what="password")
    first = audited.one("first_factor_ok", via="portal")
    wrong = audited.one("failure", what="totp")
    added = audited.one("factor_added", method="totp")
    verified = audited.one("second_factor_ok", via="totp")
    recovery = audited.one("factor_added", method="recovery")
    replaced = audited.one("recovery_codes_replaced", method="recovery")
    for line in (password, first, wrong, added, verified, recovery, replaced):
        assert_request_line(line)
    assert added["request_id"] == verified["request_id"]  # one request, two events
    ids = {line["request_id"] for line in (password, first, wrong, added, recovery, replaced)}
    assert len(ids) == 6  # one request each

    # In a new browser, sign in again and answer with the code already used at enrolment.
    client.session.cookie_jar.clear()
    assert (await portal_login(client, USER, PASSWORD)).status == 303
    page = await client.get("/.gateway/challenge?method=totp&rd=%2F")
    token = csrf_from_page(await page.text())
    used = await client.post(
        "/.gateway/challenge?method=totp&rd=%2F",
        data={"csrf_token": token, "code": code_for(secret, at=clock.now)},
        allow_redirects=False,
    )
    assert used.status == 401
    replay = audited.one("replay", method="totp")
    assert_request_line(replay)
    assert audited.events("failure")[-1]["request_id"] == replay["request_id"]


async def test_a_lockout_is_audited_with_the_failure_that_caused_it(
    make_gateway: Any, upstream: TestServer, users: Path, audited: AuditLines
) -> None:
    """The wrong answer that reaches a limit writes its failure and then the lockout, with the
    scope and until when."""
    clock = FixedClock(T0)
    client = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)},
        policies={"example.yaml": STRICT},
        clock=clock,
        **PROXIED,
    )
    client.session.headers.update(FROM)
    runtime = client.app[RUNTIME]
    await runtime.store.put_enrolment(
        USER,
        "totp",
        {"secret": runtime.secrets.cipher.encrypt(SECRET, f"totp:{USER}"), "created": 1.0},
    )
    assert (await portal_login(client, USER, PASSWORD)).status == 303
    page = await client.get("/.gateway/challenge?method=totp&rd=%2F")
    token = csrf_from_page(await page.text())
    for _ in range(2):
        await client.post(
            "/.gateway/challenge?method=totp&rd=%2F",
            data={"csrf_token": token, "code": "000000"},
            allow_redirects=False,
        )
    lockout = audited.one("lockout", scope="user_ip")
    assert_request_line(lockout)
    assert lockout["until"] == T0 + 15 * 60
    assert audited.events("failure")[-1]["request_id"] == lockout["request_id"]
    assert len(audited.events("failure")) == 2


async def test_deferral_is_audited(
    make_gateway: Any, upstream: TestServer, users: Path, audited: AuditLines
) -> None:
    """ "Remind me later" writes `deferral` (until when) and the skipped second factor."""
    client = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)},
        policies={"example.yaml": PARTNER},
        **PROXIED,
    )
    client.session.headers.update(FROM)
    assert (await portal_login(client, USER, PASSWORD)).status == 303
    page = await client.get("/.gateway/enrol?method=totp&rd=%2F")
    deferred = await client.post(
        "/.gateway/defer?rd=%2F",
        data={"csrf_token": csrf_from_page(await page.text())},
        allow_redirects=False,
    )
    assert deferred.status == 303
    line = audited.one("deferral")
    assert_request_line(line)
    assert line["until"] > 0
    skipped = audited.one("second_factor_ok", via="deferral")
    assert skipped["request_id"] == line["request_id"]


async def test_intercepted_and_header_sign_ins_are_audited(
    make_gateway: Any, legacy_server: TestServer, upstream: TestServer, audited: AuditLines
) -> None:
    """The application's own login accepted (intercept mode) and a user named by the single
    sign-on in front (header mode) are each a `first_factor_ok` line."""
    client = await make_gateway(
        {
            "app": intercept_app(str(legacy_server.make_url("")), hosts=["legacy.test"]),
            "sso": {
                "upstream": str(upstream.make_url("")),
                "hosts": ["sso.test"],
                "identity": "header",
            },
        },
        **PROXIED,
    )
    legacy = {"Host": "legacy.test", **FROM}
    form = re.search(
        r'name="csrf" value="(\w+)"', await (await client.get("/login", headers=legacy)).text()
    )
    assert form, "the application's login form"
    login = await client.post(
        "/login",
        data={"csrf": form.group(1), "username": "alice@example.com", "password": "alice-password"},
        headers=legacy,
        allow_redirects=False,
    )
    assert login.status == 303
    intercepted = audited.one("first_factor_ok", via="intercept")
    assert intercepted["user"] == "alice@example.com" and intercepted["company"] == "example"
    assert intercepted["application"] == "app" and intercepted["ip"] == CLIENT
    named = await client.get(
        "/", headers={"Host": "sso.test", "Remote-User": USER, **FROM}, allow_redirects=False
    )
    assert named.status == 303
    assert_request_line(audited.one("first_factor_ok", via="header"), application="sso")


async def test_policy_reloads_and_enforcement_are_audited(
    make_gateway: Any, upstream: TestServer, users: Path, tmp_path: Path, audited: AuditLines
) -> None:
    """The start records an enforcing company (`enforcement_on`); a reload is `policy_reload`
    accepted or refused. Outside any request there is no user, address or request id."""
    client = await make_gateway({"app": portal_app(str(upstream.make_url("")), users)})
    runtime = client.app[RUNTIME]
    assert runtime.reloader is not None
    enforced = audited.one("enforcement_on", company="example")
    assert "request_id" not in enforced and "ip" not in enforced
    policies = tmp_path / "policies"
    (policies / "other.yaml").write_text("company: Other\nmembers:\n  domains: [other.example]\n")
    assert await runtime.reloader.reload_now("test")
    accepted = audited.one("policy_reload", outcome="accepted")
    assert accepted["generation"] == 2 and accepted["trigger"] == "test"
    (policies / "broken.yaml").write_text("company: [\n")
    assert not await runtime.reloader.reload_now("test")
    refused = audited.one("policy_reload", outcome="refused")
    assert refused["errors"] == 1 and refused["generation"] == 2
    assert set(refused) == {"time", "event", "outcome", "errors", "generation", "trigger"}


async def test_users_reset_is_audited(tmp_path: Path, audited: AuditLines) -> None:
    """`gateway users reset` writes `reset` with the reason and the operator."""
    config = tmp_path / "gateway.yaml"
    data = settings_dict(tmp_path, {"app": portal_app("http://127.0.0.1:9", tmp_path / "u")})
    config.write_text(yaml.safe_dump(data))
    store = open_store(data["store"])
    await store.open()
    await store.put_enrolment(USER, "totp", {"secret": "x"})
    await store.close()
    code = await asyncio.to_thread(
        main, ["users", "reset", USER, "-c", str(config), "--reason", "OPS-1 lost phone", "--yes"]
    )
    assert code == 0
    line = audited.one("reset", user=USER)
    assert line["reason"] == "OPS-1 lost phone" and line["methods"] == ["totp"]
    assert line["operator"] and line["source"] == "cli"
    assert json.dumps(line)  # plain JSON types only
