"""Where audit lines go: standard output by default, or appended to a file (relative to the
settings file, reopened after rotation, several writers without mixed lines); an audit file that
cannot be opened stops the start with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer

from gateway.app import build_runtime
from gateway.audit import AuditLog, audit
from gateway.policy import Policy
from gateway.settings import SettingsError, settings_from_dict
from tests.observability.conftest import PASSWORD, USER
from tests.support import GatewayProcess, portal_app, portal_login, settings_dict


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_lines_appended_to_a_file_and_reopened_after_rotation(
    make_gateway: Any, upstream: TestServer, users: Path, tmp_path: Path
) -> None:
    """`audit: {to: file, path: audit.log}` appends to tmp/audit.log (next to the settings);
    after the file is renamed away, the next line starts a new one."""
    (tmp_path / "audit.log").write_text('{"event":"kept"}\n')
    client = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)},
        audit={"to": "file", "path": "audit.log"},
    )
    path = tmp_path / "audit.log"
    assert [line["event"] for line in _lines(path)] == ["kept", "enforcement_on"]
    path.rename(tmp_path / "audit.log.1")
    assert (await portal_login(client, USER, PASSWORD)).status == 303
    [line] = _lines(path)
    assert line["event"] == "first_factor_ok" and line["user"] == USER
    assert line["ip"] == "127.0.0.1" and line["company"] == "example"


def test_several_writers_share_one_file(tmp_path: Path) -> None:
    """Two destinations on one file (two workers) append whole lines, never mixed."""
    first, second = AuditLog("file", tmp_path / "a.log"), AuditLog("file", tmp_path / "a.log")
    first.attach()
    second.attach()
    try:
        audit("test_event", detail="x" * 5000)
    finally:
        second.detach()
        first.detach()
    lines = _lines(tmp_path / "a.log")
    assert [line["detail"] for line in lines] == ["x" * 5000] * 2


def test_an_audit_file_that_cannot_be_opened_stops_the_start(tmp_path: Path) -> None:
    """A path in a missing directory: SettingsError naming the file and the setting."""
    (tmp_path / "users.yaml").write_text("users: {}\n")
    data = settings_dict(
        tmp_path,
        {"app": portal_app("http://127.0.0.1:9", tmp_path / "users.yaml")},
        audit={"to": "file", "path": "missing/audit.log"},
    )
    settings = settings_from_dict(data, tmp_path / "gateway.yaml")
    with pytest.raises(SettingsError) as caught:
        build_runtime(settings, Policy.EMPTY)
    message = str(caught.value)
    assert f"cannot open the audit file {tmp_path / 'missing/audit.log'} for appending" in message
    assert "No such file or directory" in message and "audit.path" in message


def test_gateway_run_says_why_it_cannot_start(tmp_path: Path) -> None:
    """`gateway run` prints the reason and exits 1, without a traceback."""
    config = tmp_path / "gateway.yaml"
    data = settings_dict(
        tmp_path,
        {"app": portal_app("http://127.0.0.1:9", tmp_path / "users.yaml")},
        audit={"to": "file", "path": str(tmp_path / "missing" / "audit.log")},
    )
    (tmp_path / "users.yaml").write_text("users: {}\n")
    config.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "gateway: cannot start: cannot open the audit file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("to", ["stdout", "file"])
def test_gateway_run_writes_each_line_once(tmp_path: Path, to: str) -> None:
    """A running gateway's lines go only where the settings say: standard output (not also
    the command line's stand-in on standard error), or only the file."""
    (tmp_path / "users.yaml").write_text("users: {}\n")
    data = settings_dict(
        tmp_path, {"app": portal_app("http://127.0.0.1:9", tmp_path / "users.yaml")}
    )
    if to == "file":
        data["audit"] = {"to": "file", "path": "audit.log"}
    gateway = GatewayProcess.run(tmp_path, data)
    gateway.stop()
    output = gateway.log.read_text()
    marker = '"event":"enforcement_on"'
    if to == "stdout":
        assert output.count(marker) == 1, output
    else:
        assert marker not in output, output
        assert (tmp_path / "audit.log").read_text().count(marker) == 1
