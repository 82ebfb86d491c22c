"""Regulation of wrong second-factor answers: limits per user+address, user and address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway import regulation
from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from tests.support import code_for, csrf_from_page, portal_app, portal_login

NOW = 1_800_000_000.0


def test_lockout_table() -> None:
    """Each scope locks at its own limit and unlocks when enough failures leave the window."""
    assert regulation.lockout({"user_ip": [NOW - 1] * 9}, NOW) is None
    locked = regulation.lockout({"user_ip": [NOW - 100 + i for i in range(10)]}, NOW)
    assert locked is not None and locked.scope == "user_ip"
    assert locked.until == NOW - 100 + regulation.WINDOW
    assert regulation.lockout({"user_ip": [NOW - regulation.WINDOW] * 10}, NOW) is None
    assert regulation.lockout({"user": [NOW] * 29, "ip": [NOW] * 49}, NOW) is None
    assert regulation.lockout({"user": [NOW] * 30}, NOW).scope == "user"  # type: ignore[union-attr]
    assert regulation.lockout({"ip": [NOW] * 50}, NOW).scope == "ip"  # type: ignore[union-attr]
    assert max(regulation.LIMITS.values()) < 100  # NIST SP 800-63B's ceiling


async def test_guessing_across_sign_ins_is_stopped(make_gateway: Any, tmp_path: Path) -> None:
    """Five wrong codes per sign-in no longer reset the count: after 10 from one address the
    right code is refused too, until the window has passed."""
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  carol@example.com:\n    password: '{hash_password('pw')}'\n")
    clock = FixedClock(NOW)
    client = await make_gateway({"app": portal_app("http://127.0.0.1:9", users)}, clock=clock)
    store = client.app[RUNTIME].store
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    cipher = client.app[RUNTIME].secrets.cipher
    await store.put_enrolment(
        "carol@example.com",
        "totp",
        {"secret": cipher.encrypt(secret, "totp:carol@example.com"), "created": 1.0},
    )
    statuses = []
    for _ in range(4):
        login = await portal_login(client, "carol@example.com", "pw")
        location = login.headers["Location"]
        token = csrf_from_page(await (await client.get(location)).text())
        for _ in range(3):
            response = await client.post(location, data={"csrf_token": token, "code": "000000"})
            statuses.append(response.status)
            if response.status == 429:
                break
    assert statuses.count(401) == 9 and statuses[-1] == 429
    assert "too many wrong answers" in (await response.text()).lower()
    login = await portal_login(client, "carol@example.com", "pw")
    location = login.headers["Location"]
    token = csrf_from_page(await (await client.get(location)).text())
    right = await client.post(
        location, data={"csrf_token": token, "code": code_for(secret, at=clock.now)}
    )
    assert right.status == 429
    clock.advance(regulation.WINDOW + 1)
    login = await portal_login(client, "carol@example.com", "pw")
    location = login.headers["Location"]
    token = csrf_from_page(await (await client.get(location)).text())
    ok = await client.post(
        location,
        data={"csrf_token": token, "code": code_for(secret, at=clock.now)},
        allow_redirects=False,
    )
    assert ok.status == 303
