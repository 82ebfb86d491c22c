"""`gateway users list|show`: members and their status from the policy and the configured store
(SQLite and Redis), with plain output, CSV, and exit codes 0, 1 and 2."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gateway.store import Store, open_store
from tests.admin.helpers import POLICIES
from tests.support import intercept_app, settings_dict

NOW = time.time()


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


async def _fill(store: Store) -> None:
    await store.open()
    try:
        await store.note_user("alice@acme.example", "acme", NOW - 60, {"last_sign_in": NOW - 60})
        await store.note_user(
            "alice@acme.example", "acme", NOW, {"last_2fa": NOW, "last_2fa_ip": "10.1.2.3"}
        )
        await store.put_enrolment("alice@acme.example", "totp", {"secret": "x", "created": NOW})
        await store.note_user("erin@acme.example", "acme", NOW, {"name": "Erin Shared"})
        for n in range(3):
            await store.note_browser("erin@acme.example", f"b{n}", NOW, NOW - 86400)
        await store.note_user("bob@globex.example", "globex", NOW, {})
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    extra = {"store": request.getfixturevalue("redis_url")} if request.param == "redis" else {}
    data = settings_dict(tmp_path, {"app": intercept_app("http://127.0.0.1:1")}, POLICIES, **extra)
    asyncio.run(_fill(open_store(data["store"])))
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_list_shows_each_companys_members_and_flags(config: Path) -> None:
    """All companies by default; one with --company; the status filter and the query narrow
    it; a shared login and a never-seen listed member show as such."""
    everyone = gateway("users", "list", "-c", str(config))
    assert everyone.returncode == 0, everyone.stderr
    lines = everyone.stdout.splitlines()
    assert lines[0].split() == [
        "USER",
        "COMPANY",
        "STATUS",
        "METHODS",
        "LAST",
        "2FA",
        "FROM",
        "FLAGS",
    ]
    users = [line.split()[0] for line in lines[1:-1]]
    assert users == [
        "alice@acme.example",
        "dave@partner.example",
        "erin@acme.example",
        "bob@globex.example",
    ]
    assert lines[-1] == "4 members"
    alice = next(line for line in lines if line.startswith("alice"))
    assert "enrolled" in alice and "totp" in alice and "10.1.2.3" in alice
    erin = next(line for line in lines if line.startswith("erin"))
    assert "not_enrolled" in erin and "possibly_shared" in erin
    acme = gateway(
        "users", "list", "-c", str(config), "--company", "acme", "--status", "possibly_shared"
    )
    assert acme.returncode == 0 and [
        line.split()[0] for line in acme.stdout.splitlines()[1:-1]
    ] == ["erin@acme.example"]
    named = gateway("users", "list", "-c", str(config), "-q", "shared", "--csv")
    assert named.returncode == 0
    rows = named.stdout.splitlines()
    assert rows[0].startswith("user,name,status") and len(rows) == 2
    assert rows[1].startswith("erin@acme.example,Erin Shared,not_enrolled,")


def test_list_refuses_an_unknown_company_and_a_bad_status(config: Path) -> None:
    unknown = gateway("users", "list", "-c", str(config), "--company", "initech")
    assert (
        unknown.returncode == 1
        and "no company 'initech' (companies: acme, globex)" in unknown.stderr
    )
    bad = gateway("users", "list", "-c", str(config), "--status", "asleep")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_show_one_user(config: Path) -> None:
    """A member's company, factors, last 2FA and flags; an unknown user exits 1."""
    shown = gateway("users", "show", "Alice@Acme.example", "-c", str(config))
    assert shown.returncode == 0, shown.stderr
    facts = dict(line.split("  ", 1) for line in shown.stdout.splitlines())
    facts = {key.strip(): value.strip() for key, value in facts.items()}
    assert facts["company"] == "acme (Acme Corporation), partner"
    assert facts["second factors"] == "totp" and facts["status"] == "enrolled"
    assert facts["admin"] == "yes" and facts["last 2FA"].endswith("from 10.1.2.3")
    erin = gateway("users", "show", "erin@acme.example", "-c", str(config))
    assert "possibly shared   yes (3 browsers before enrolling)" in erin.stdout
    nobody = gateway("users", "show", "nobody@nowhere.example", "-c", str(config))
    assert nobody.returncode == 1 and "never seen" in nobody.stderr


def test_without_a_store_file_it_says_so(tmp_path: Path) -> None:
    data = settings_dict(tmp_path, {"app": intercept_app("http://127.0.0.1:1")}, POLICIES)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    result = gateway("users", "list", "-c", str(path))
    assert result.returncode == 1 and "there is no SQLite store" in result.stderr
