"""The `gateway` command: exit codes and messages an operator or a CI job relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from argon2 import PasswordHasher

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
