"""Changing how one signs in needs a second factor presented in this session within the last 15
minutes (issue 15, item 3; the class of Keycloak CVE-2026-3429): an old verification, or one a
trusted-network cookie or a deferral stood in for, is sent to "Confirm it is you" first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway.clock import FixedClock
from tests.proxy.helpers import PASSWORD, USER, write_users_file
from tests.support import code_for, csrf_from_page, enrol_totp, portal_app, portal_login

POLICY = """
company: Example Company
members:
  domains: [example.com]
methods:
  allowed: [totp, webauthn, recovery]
enforce_2fa: true
"""


async def signed_in(make_gateway: Any, upstream_url: str, tmp_path: Path, clock: FixedClock) -> Any:
    client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        policies={"example.yaml": POLICY},
        clock=clock,
    )
    login = await portal_login(client, USER, PASSWORD)
    secret, _ = await enrol_totp(client, login.headers["Location"], clock)
    await client.get("/.gateway/recovery")  # the first codes, shown once after enrolment
    return client, secret


async def test_a_stale_session_confirms_before_changing_factors(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    """16 minutes after the code: the passkeys page sends to "Confirm it is you"; removing a
    passkey or making new recovery codes is refused; after a fresh code, back to the page."""
    clock = FixedClock(time.time())
    client, secret = await signed_in(make_gateway, upstream_url, tmp_path, clock)
    assert (await client.get("/.gateway/passkeys", allow_redirects=False)).status == 200
    clock.advance(16 * 60)  # the second factor is now older than 15 minutes
    page = await client.get("/.gateway/passkeys", allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"] == "/.gateway/reauth?rd=%2F.gateway%2Fpasskeys"
    html = await (await client.get("/.gateway/reauth?rd=%2F.gateway%2Fpasskeys")).text()
    assert "Confirm it is you" in html
    csrf = csrf_from_page(html)
    refused = await client.post(
        "/.gateway/passkeys/remove", data={"csrf_token": csrf, "credential_id": "x"}
    )
    assert refused.status == 403
    new_codes = await client.post("/.gateway/recovery", data={"csrf_token": csrf})
    assert new_codes.status == 403
    step = await client.post(
        "/.gateway/reauth?rd=%2F.gateway%2Fpasskeys",
        data={"csrf_token": csrf},
        allow_redirects=False,
    )
    assert step.headers["Location"].startswith("/.gateway/challenge")
    challenge = await client.get(step.headers["Location"])
    done = await client.post(
        step.headers["Location"],
        data={
            "csrf_token": csrf_from_page(await challenge.text()),
            "code": code_for(secret, clock(), offset_steps=1),
        },
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/.gateway/passkeys"
    assert (await client.get("/.gateway/passkeys", allow_redirects=False)).status == 200


async def test_a_reauth_page_needs_a_verified_session(
    make_gateway: Any, upstream_url: str, tmp_path: Path
) -> None:
    """Only a verified session can be stepped down to confirm it is its owner."""
    client = await make_gateway(
        {"app": portal_app(upstream_url, write_users_file(tmp_path))},
        policies={"example.yaml": POLICY},
    )
    assert (await client.get("/.gateway/reauth?rd=%2F")).status == 403
