"""`gateway users sessions USER` lists the user's remembered browsers after their sessions
(another user's, lapsed ones, and all where the policy stops offering it, not)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import yaml

from gateway.store import open_store
from tests.support import DEFAULT_POLICY, intercept_app, settings_dict

REPO = Path(__file__).resolve().parents[2]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def test_users_sessions_lists_remembered_browsers(tmp_path: Path) -> None:
    policies = {"example.yaml": DEFAULT_POLICY + "remember_browser: 30d\n"}
    data = settings_dict(tmp_path, {"app": intercept_app("http://127.0.0.1:1")}, policies)
    now = time.time()

    async def fill() -> None:
        store = open_store(data["store"])
        await store.open()
        record = {"company": "example", "since": now, "user_agent": FIREFOX, "address": "192.0.2.7"}
        await store.remember_browser("carol@example.com", "a" * 32, record, now + 86400)
        await store.remember_browser("carol@example.com", "b" * 32, record, now - 1)  # lapsed
        await store.remember_browser("dave@example.com", "c" * 32, record, now + 86400)
        await store.close()

    asyncio.run(fill())
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(data))
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "users",
            "sessions",
            "carol@example.com",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "carol@example.com is not signed in anywhere." in out
    assert "a" * 32 in out and "Firefox 133 on Linux" in out and "192.0.2.7" in out
    assert "b" * 32 not in out and "c" * 32 not in out
    assert out.splitlines()[-1] == "1 remembered browser"


def test_users_sessions_lists_no_browser_where_the_policy_stopped_offering_it(
    tmp_path: Path,
) -> None:
    data = settings_dict(tmp_path, {"app": intercept_app("http://127.0.0.1:1")})
    now = time.time()

    async def fill() -> None:
        store = open_store(data["store"])
        await store.open()
        record = {"company": "example", "since": now, "user_agent": FIREFOX, "address": "192.0.2.7"}
        await store.remember_browser("carol@example.com", "a" * 32, record, now + 86400)
        await store.close()

    asyncio.run(fill())
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(data))
    command = [sys.executable, "-m", "gateway", "users", "sessions", "carol@example.com"]
    listed = subprocess.run(
        [*command, "-c", str(config)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert listed.returncode == 0, listed.stderr
    assert "a" * 32 not in listed.stdout
