"""Password checks run off the event loop (issue 15, item 6): while sign-ins are being checked
(argon2, about 100 ms each), the worker still answers everything else. The check is held open
here, so the order of events shows it: healthz answers while the checks are still running."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from gateway.identity.portal import UsersFile
from tests.proxy.helpers import PASSWORD, USER, write_users_file
from tests.support import csrf_from_page, portal_app


async def test_a_password_spray_does_not_hold_up_other_requests(
    make_gateway: Any, upstream_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = write_users_file(tmp_path)
    client = await make_gateway({"app": portal_app(upstream_url, users)})
    release = threading.Event()
    started = threading.Semaphore(0)
    check = UsersFile.check

    def slow_check(self: UsersFile, username: str, password: str) -> Any:
        started.release()
        release.wait(30)  # failsafe: a check on the loop would otherwise hang the test
        return check(self, username, password)

    monkeypatch.setattr(UsersFile, "check", slow_check)
    page = await client.get("/.gateway/login")
    token = csrf_from_page(await page.text())

    async def guess(n: int) -> int:
        answer = await client.post(
            "/.gateway/login",
            data={"csrf_token": token, "username": f"u{n}@example.com", "password": "x"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
            allow_redirects=False,
        )
        return answer.status

    sprays = [asyncio.create_task(guess(n)) for n in range(6)]
    await asyncio.to_thread(started.acquire, True, 30)  # one check is running
    health = await client.get("/.gateway/healthz")
    answered_while_checking = not release.is_set()
    release.set()
    statuses = await asyncio.gather(*sprays)
    assert health.status == 200
    assert answered_while_checking
    assert all(status in (401, 429) for status in statuses), statuses
    ok = await client.post(
        "/.gateway/login",
        data={"csrf_token": token, "username": USER, "password": PASSWORD},
        allow_redirects=False,
    )
    assert ok.status == 303
