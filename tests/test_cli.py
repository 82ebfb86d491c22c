"""The `gateway` command: exit codes and messages an operator or a CI job relies on."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from argon2 import PasswordHasher

from gateway.enforcement import apply_ratchet
from gateway.policy import load_policy_dir
from gateway.store import SqliteStore
from tests.support import intercept_app, settings_dict

REPO = Path(__file__).resolve().parents[1]


def gateway(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_policy_check_accepts_the_examples() -> None:
    """The shipped example policies pass, checked against the example settings' applications."""
    result = gateway("policy", "check", "policies", "-c", "gateway.example.yaml")
    assert result.returncode == 0, result.stderr
    assert "policy is valid" in result.stdout


def test_policy_check_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    """Errors in several files come out together, each as file:line: sentence, and exit 1."""
    (tmp_path / "a.yaml").write_text(
        "company: A\nmembers:\n  domains: [a.example]\nenforce_2fa: yes\n"
    )
    (tmp_path / "b.yaml").write_text(
        "company: B\nmembers:\n  domains: [b.example]\ntrusted_networks:\n  networks: [10.0.0.300/8]\n"
    )
    result = gateway("policy", "check", str(tmp_path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(f"{tmp_path / 'a.yaml'}:4: ") and "enforce_2fa" in line for line in lines
    )
    assert any(
        line.startswith(f"{tmp_path / 'b.yaml'}:5: ") and "10.0.0.300/8" in line for line in lines
    )
    assert "Traceback" not in result.stderr


def test_policy_check_missing_directory(tmp_path: Path) -> None:
    result = gateway("policy", "check", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "nope" in result.stderr and "Traceback" not in result.stderr


def test_hash_password_makes_argon2id() -> None:
    """`gateway hash-password --stdin` prints an argon2id hash that verifies the password."""
    result = gateway("hash-password", "--stdin", stdin="s3cret pass\n")
    assert result.returncode == 0
    digest = result.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert PasswordHasher().verify(digest, "s3cret pass")


def test_keygen_prints_usable_keys() -> None:
    result = gateway("keygen")
    assert result.returncode == 0
    from gateway.crypto import Cipher

    key = result.stdout.splitlines()[0].split(":", 1)[1].strip()
    cipher = Cipher(key)
    assert cipher.decrypt(cipher.encrypt("x", "c"), "c") == "x"


def test_run_with_a_broken_settings_file_explains(tmp_path: Path) -> None:
    """A settings file with errors: every error with its line, exit 1, no traceback."""
    config = tmp_path / "gateway.yaml"
    config.write_text("listen:\n  port: eighty\napplications: {}\nstroe: x\n")
    result = gateway("run", "-c", str(config))
    assert result.returncode == 1
    assert "cannot start" in result.stderr
    assert f"{config}:2:" in result.stderr
    assert "stroe" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_missing_secret_explains(tmp_path: Path) -> None:
    """A secret that cannot be read stops the start with a plain sentence."""
    config = tmp_path / "gateway.yaml"
    (tmp_path / "policies").mkdir()
    config.write_text(
        "secrets:\n  session_keys: {env: GW_TEST_UNSET_KEYS}\n  encryption_key: {env: GW_TEST_UNSET_ENC}\n"
        "store: sqlite:///" + str(tmp_path / "g.db").lstrip("/") + "\n"
        "applications:\n  app:\n    upstream: http://127.0.0.1:9\n    hosts: ['*']\n"
        "    identity: intercept\n    intercept: {session_cookies: [sid]}\n"
    )
    result = gateway("run", "-c", str(config))
    assert result.returncode == 1, result.stderr
    assert "GW_TEST_UNSET" in result.stderr
    assert "Traceback" not in result.stderr


# -- the enforcement ratchet, explain and the operator's companies commands ---------------------

ACME = """\
company: Acme Corporation
members:
  domains: [acme.example]
enforce_2fa: true
trusted_networks:
  networks: [10.0.0.0/8, "2001:db8:a::/48"]
"""
GLOBEX = """\
company: Globex
members:
  domains: [globex.example]
enforce_2fa: {enforce}
deferral: 24h
"""
INITECH = """\
company: Initech Clients
members:
  domains: [initech.example]
account_type: client
trusted_networks:
  networks: [198.51.100.0/24]
"""
RULES = """\
applications:
  legacy:
    - paths: ["/public/**"]
      access: bypass
    - paths: ["/admin/**"]
      access: deny
    - paths: ["/status"]
      access: one_factor
"""


def _deployment(tmp_path: Path, globex_enforced: bool = False, **extra: Any) -> Path:
    """A settings file with a policy directory and a (not yet created) SQLite store."""
    policies = {
        "acme.yaml": ACME,
        "globex.yaml": GLOBEX.format(enforce=str(globex_enforced).lower()),
        "initech.yaml": INITECH,
        "rules.yaml": RULES,
    }
    app = intercept_app("http://127.0.0.1:9", hosts=["legacy.example"])
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(settings_dict(tmp_path, {"legacy": app}, policies, **extra)))
    return config


def _with_store(tmp_path: Path, action: Callable[[SqliteStore], Awaitable[object]]) -> Any:
    async def run() -> object:
        store = SqliteStore(tmp_path / "gateway.db")
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _enforced(tmp_path: Path) -> dict[str, float]:
    return dict(_with_store(tmp_path, lambda store: store.enforced_companies()))


def _audit_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_policy_check_refuses_turning_off_an_enforced_company(tmp_path: Path) -> None:
    """A company the store has enforced (here by a gateway start with the file saying true) cannot
    be turned off by the file: `policy check -c` reports it at the enforce_2fa line, exit 1."""
    config = _deployment(tmp_path, globex_enforced=True)
    policies = tmp_path / "policies"
    started = load_policy_dir(policies)
    _with_store(tmp_path, lambda store: apply_ratchet(started, store, 1_700_000_000.0))
    (policies / "globex.yaml").write_text(GLOBEX.format(enforce="false"))

    result = gateway("policy", "check", str(policies), "-c", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{policies / 'globex.yaml'}:4: enforce_2fa cannot be turned off")
    assert "since 2023-11-14 22:13 UTC" in first
    assert "gateway companies lift-enforcement globex" in first
    assert "1 error(s)" in result.stderr and "Traceback" not in result.stderr

    # Without the settings (or with --no-store) there is no store to compare with.
    assert gateway("policy", "check", str(policies)).returncode == 0
    no_store = gateway("policy", "check", str(policies), "-c", str(config), "--no-store")
    assert no_store.returncode == 0, no_store.stderr


def test_policy_check_records_nothing(tmp_path: Path) -> None:
    """A check compares with the store; unlike a gateway start it enforces nothing new."""
    config = _deployment(tmp_path)
    _with_store(tmp_path, lambda store: store.ping())
    result = gateway("policy", "check", str(tmp_path / "policies"), "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "policy is valid; no enforced company is turned off" in result.stdout
    assert _enforced(tmp_path) == {}  # acme says true but was not recorded by the check


def test_policy_check_without_a_store_file_creates_none(tmp_path: Path) -> None:
    config = _deployment(tmp_path)
    result = gateway("policy", "check", str(tmp_path / "policies"), "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "no SQLite store at" in result.stderr and "ratchet was not checked" in result.stderr
    assert not (tmp_path / "gateway.db").exists()


def test_policy_check_with_a_store_that_cannot_be_opened(tmp_path: Path) -> None:
    config = _deployment(tmp_path, store="redis://:hunter2secret@127.0.0.1:9/0")
    result = gateway("policy", "check", str(tmp_path / "policies"), "-c", str(config))
    assert result.returncode == 1
    assert "cannot open the store" in result.stderr
    assert "hunter2secret" not in result.stderr and "Traceback" not in result.stderr


def test_lift_enforcement_needs_a_reason(tmp_path: Path) -> None:
    config = _deployment(tmp_path)
    _with_store(tmp_path, lambda store: store.enforce("globex", 1_700_000_000.0, "admin page"))
    for reason in ([], ["--reason", "   "]):
        result = gateway(
            "companies", "lift-enforcement", "globex", "-c", str(config), *reason, "--yes"
        )
        assert result.returncode == 2, result.stderr
        assert "a reason is required" in result.stderr
        assert not _audit_lines(result.stderr)
    assert "globex" in _enforced(tmp_path)


def test_lift_enforcement_is_audited(tmp_path: Path) -> None:
    """Lifted from the store, with a JSON audit line on stderr naming company, reason, operator."""
    config = _deployment(tmp_path)
    _with_store(tmp_path, lambda store: store.enforce("globex", 1_700_000_000.0, "admin page"))
    args = ("companies", "lift-enforcement", "globex", "-c", str(config))
    reason = ("--reason", "OPS-42: enforced by mistake")

    off_tty = gateway(*args, *reason)  # not on a terminal and no --yes: nothing happens
    assert off_tty.returncode == 2 and "--yes" in off_tty.stderr
    assert "globex" in _enforced(tmp_path)

    result = gateway("--log-level", "error", *args, *reason, "--yes")
    assert result.returncode == 0, result.stderr
    assert 'Lifted 2FA enforcement for globex ("Globex")' in result.stdout
    assert "enforce_2fa: false" in result.stdout and "defer" in result.stdout
    [line] = _audit_lines(result.stderr)
    assert line["event"] == "enforcement_lifted"
    assert line["company"] == "globex" and line["reason"] == "OPS-42: enforced by mistake"
    assert line["source"] == "cli" and line["operator"]
    assert _enforced(tmp_path) == {}

    again = gateway(*args, *reason, "--yes")
    assert again.returncode == 1
    assert "not enforced in the store" in again.stderr and not _audit_lines(again.stderr)


def test_lift_enforcement_warns_when_the_file_still_enforces(tmp_path: Path) -> None:
    config = _deployment(tmp_path)
    _with_store(tmp_path, lambda store: store.enforce("acme", 1_700_000_000.0, "policy file"))
    result = gateway(
        "companies", "lift-enforcement", "acme", "-c", str(config), "--reason", "test", "--yes"
    )
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'policies' / 'acme.yaml'}:4 still says enforce_2fa: true" in result.stdout
    assert "next gateway start or policy reload" in result.stdout


def test_lift_enforcement_asks_on_a_terminal(tmp_path: Path) -> None:
    config = _deployment(tmp_path)
    _with_store(tmp_path, lambda store: store.enforce("globex", 1_700_000_000.0, "admin page"))

    def answer(text: str) -> subprocess.CompletedProcess[str]:
        master, slave = pty.openpty()
        try:
            with subprocess.Popen(
                [
                    *(sys.executable, "-m", "gateway", "companies", "lift-enforcement", "globex"),
                    *("-c", str(config), "--reason", "tty test"),
                ],
                stdin=slave,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            ) as process:
                os.close(slave)
                os.write(master, text.encode())
                out, err = process.communicate(timeout=60)
                return subprocess.CompletedProcess(process.args, process.returncode, out, err)
        finally:
            os.close(master)

    declined = answer("n\n")
    assert declined.returncode == 1, declined.stderr
    assert (
        "Lift 2FA enforcement for globex" in declined.stdout
        and "Nothing was lifted" in declined.stdout
    )
    assert "globex" in _enforced(tmp_path) and not _audit_lines(declined.stderr)

    accepted = answer("y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert _audit_lines(accepted.stderr)[0]["event"] == "enforcement_lifted"
    assert _enforced(tmp_path) == {}


def test_companies_status(tmp_path: Path) -> None:
    config = _deployment(tmp_path)
    since = datetime(2025, 1, 15, 9, 30, tzinfo=UTC).timestamp()
    _with_store(tmp_path, lambda store: store.enforce("globex", since, "admin page"))
    result = gateway("companies", "status", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ID       NAME              TYPE     IN FILE  IN STORE SINCE (UTC)  EFFECTIVE    NETWORKS  DEFERRAL",
        "acme     Acme Corporation  partner  true     -                     yes (file)   2         - (enforced)",
        "globex   Globex            partner  false    2025-01-15 09:30      yes (store)  0         - (enforced)",
        "initech  Initech Clients   client   false    -                     no           1         48h",
    ]


def test_policy_explain_with_settings_and_store(tmp_path: Path) -> None:
    """Routed by host, path normalised before matching, facts from the store."""
    config = _deployment(tmp_path)
    _with_store(tmp_path, lambda store: store.put_enrolment("alice@acme.example", "totp", {}))
    base = ("policy", "explain", "-c", str(config), "--user", "Alice@acme.example")

    denied = gateway(*base, "--ip", "10.1.2.3", "--url", "https://legacy.example/public/../admin")
    assert denied.returncode == 0, denied.stderr
    rules = tmp_path / "policies" / "rules.yaml"
    assert "path:        /public/../admin -> /admin " in denied.stdout
    assert f"access rule: {rules}:5: paths /admin/** -> deny" in denied.stdout
    assert denied.stdout.splitlines()[-1] == "decision:    deny: the access rule denies this path"

    inside = gateway(*base, "--ip", "2001:db8:a::5", "--url", "https://legacy.example/reports")
    assert inside.returncode == 0, inside.stderr
    lines = inside.stdout.splitlines()
    assert "enrolment:   enrolled: totp" in lines
    assert "no rule matched (none of legacy's 3 rules): two_factor by default" in inside.stdout
    assert "2001:db8:a::5 is in the trusted network 2001:db8:a::/48 of acme" in inside.stdout
    assert lines[-2:] == [
        "  no trusted-network cookie: challenge: a second factor is required",
        "  a valid trusted-network cookie: skip_trusted: a valid trusted-network cookie, "
        "from inside that network",
    ]


def test_policy_explain_with_a_policy_dir_only(tmp_path: Path) -> None:
    _deployment(tmp_path)
    policies = str(tmp_path / "policies")
    base = ("policy", "explain", "--policy-dir", policies, "--ip", "198.51.100.7")
    no_app = gateway(*base, "--user", "carol@initech.example", "--url", "/x")
    assert no_app.returncode == 2 and "--app" in no_app.stderr

    client = gateway(*base, "--app", "legacy", "--user", "carol@initech.example", "--url", "/x")
    assert client.returncode == 0, client.stderr
    assert "client accounts never use trusted networks" in client.stdout
    assert "not consulted" in client.stdout

    nobody = gateway(
        *base, "--app", "legacy", "--user", "eve@nowhere.example", "--url", "/public/a"
    )
    assert "member of no company: 2FA always required" in nobody.stdout
    assert f"{tmp_path / 'policies' / 'rules.yaml'}:3: paths /public/** -> bypass" in nobody.stdout

    encoded = gateway(
        *base, "--app", "legacy", "--user", "eve@x.example", "--url", "/public%2f..%2fadmin"
    )
    assert encoded.returncode == 1
    assert (
        "%2f" in encoded.stdout
        and "refused" in encoded.stdout
        and "Traceback" not in encoded.stderr
    )


def test_run_on_a_busy_port_says_so_and_leaves_nothing_open(tmp_path: Path) -> None:
    """The address is taken: one clear line and exit 1. What the start had opened (the store,
    the upstream client) is closed again, so no "Unclosed client session" or traceback follows
    (issue 17, the demo's busy port; `gateway run` had the same)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings_dict(tmp_path, {"app": intercept_app("http://127.0.0.1:9")}, port=port)
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml.safe_dump(settings))
        done = gateway("run", "-c", str(config))
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "in use" in done.stderr, done.stderr
    assert "Unclosed" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def time_now() -> float:
    return datetime.now(UTC).timestamp()


def _sessions_settings(tmp_path: Path) -> tuple[Path, list[str]]:
    """Settings with an SQLite store holding live sessions: two of Carol's (one from before
    browsers were kept), one of Dave's; returns the settings file and Carol's storage keys."""
    import time

    from gateway.crypto import Cipher
    from gateway.sessions import Level, SessionManager, storage_key
    from gateway.store import open_store

    data = settings_dict(tmp_path, {"app": intercept_app("http://127.0.0.1:1")})
    key = (tmp_path / "encryption-key").read_text()

    async def fill() -> list[str]:
        store = open_store(data["store"])
        await store.open()
        sessions = SessionManager(store, Cipher(key), time.time)
        made = []
        for user, agent in (
            ("carol@example.com", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0"),
            ("carol@example.com", None),
            ("dave@example.com", None),
        ):
            session = sessions.new("app")
            session.user, session.level, session.second_factor = user, Level.VERIFIED, "totp"
            session.user_agent, session.address = agent, "192.0.2.7" if agent else None
            await sessions.save(session)
            made.append(storage_key(session.id))
        await store.close()
        return made[:2]

    keys = asyncio.run(fill())
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, keys


def test_users_sessions_lists_and_ends_them_audited(tmp_path: Path) -> None:
    """`gateway users sessions USER` lists the user's live sessions with the IDs the pages
    show; --end ID ends one, --end-all the rest, each audited; another user's stay."""
    from gateway.crypto import Cipher
    from gateway.sessions import SessionManager

    config, keys = _sessions_settings(tmp_path)
    listed = gateway("users", "sessions", "Carol@example.com", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "BROWSER", "ADDRESS"]
    assert "Firefox 133 on Linux" in listed.stdout and "192.0.2.7" in listed.stdout
    assert "unknown browser" in listed.stdout and lines[-1] == "2 sessions"
    ids = [line.split()[0] for line in lines[1:-1]]
    secret = (tmp_path / "encryption-key").read_text()
    gateways = SessionManager(None, Cipher(secret), time_now, handle_key=secret)  # type: ignore[arg-type]
    assert sorted(ids) == sorted(gateways.handle(key) for key in keys)  # the pages' handles
    ended = gateway(
        "users",
        "sessions",
        "carol@example.com",
        "--end",
        ids[0],
        "--reason",
        "lost laptop",
        "-c",
        str(config),
    )
    assert ended.returncode == 0, ended.stderr
    assert f"Ended the session {ids[0]} of carol@example.com" in ended.stdout
    line = json.loads(next(x for x in ended.stderr.splitlines() if x.startswith("{")))
    assert line["event"] == "operator_session_ended" and line["session"] == ids[0]
    assert line["user"] == "carol@example.com" and line["reason"] == "lost laptop"
    assert line["source"] == "cli" and "ip" not in line
    again = gateway("users", "sessions", "carol@example.com", "--end", ids[0], "-c", str(config))
    assert again.returncode == 1 and "has no session" in again.stderr
    junk = gateway("users", "sessions", "carol@example.com", "--end", "é" * 300, "-c", str(config))
    assert junk.returncode == 1 and "Traceback" not in junk.stderr
    both = gateway(
        "users", "sessions", "carol@example.com", "--end", ids[1], "--end-all", "-c", str(config)
    )
    assert both.returncode == 2
    every = gateway("users", "sessions", "carol@example.com", "--end-all", "-c", str(config))
    assert every.returncode == 0 and "Ended 1 session of carol@example.com and forgot 0 remembered browsers." in every.stdout
    line = json.loads(next(x for x in every.stderr.splitlines() if x.startswith("{")))
    assert line["event"] == "operator_sessions_ended" and line["sessions_ended"] == 1
    gone = gateway("users", "sessions", "carol@example.com", "-c", str(config))
    assert gone.stdout.strip() == "carol@example.com is not signed in anywhere."
    dave = gateway("users", "sessions", "dave@example.com", "-c", str(config))
    assert dave.stdout.splitlines()[-1] == "1 session"


def test_users_sessions_without_a_store_says_so(tmp_path: Path) -> None:
    data = settings_dict(tmp_path, {"app": intercept_app("http://127.0.0.1:1")})
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(data))
    result = gateway("users", "sessions", "carol@example.com", "-c", str(config))
    assert result.returncode == 1 and "there is no SQLite store" in result.stderr
