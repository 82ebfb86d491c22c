"""`mode: forward_auth` in the settings: the shipped example loads, and each mistake is reported
with its file and line like every other settings error."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import load_settings
from gateway.yamlsource import ConfigInvalid
from tests.forward_auth.conftest import NGINX_SETTINGS

HEAD = """secrets:
  session_keys: {env: K}
  encryption_key: {env: E}
"""


def test_the_shipped_nginx_settings_load() -> None:
    """deploy/nginx/gateway.yaml is valid: a forward-auth application with no upstream."""
    settings = load_settings(NGINX_SETTINGS)
    [app] = settings.applications
    assert app.forward_auth and app.upstream == "" and app.identity == "portal"
    assert app.hosts == ("app.example.com",)
    assert settings.listen.port == 9091
    assert settings.trusted_proxies


def test_proxy_is_the_default_mode(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        HEAD + "applications:\n  wiki:\n    upstream: http://127.0.0.1:9000\n"
        "    hosts: ['*']\n    identity: header\n"
        "trusted_proxies: [127.0.0.1/32]\n"
    )
    [app] = load_settings(path).applications
    assert not app.forward_auth and app.upstream == "http://127.0.0.1:9000"


def test_forward_auth_mistakes_are_reported_with_their_lines(tmp_path: Path) -> None:
    """An upstream (or other proxy-only setting), intercept identity and a missing
    trusted_proxies are each an error at the right line, all reported at once."""
    path = tmp_path / "gateway.yaml"
    path.write_text(
        HEAD  # lines 1-3
        + "applications:\n"  # 4
        "  wiki:\n"  # 5
        "    mode: forward_auth\n"  # 6
        "    upstream: http://127.0.0.1:9000\n"  # 7
        "    hosts: [wiki.example]\n"  # 8
        "    identity: intercept\n"  # 9
        "    intercept: {session_cookies: [sid]}\n"  # 10
        "    timeouts: {read: 5s}\n"  # 11
    )
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    errors = [(error.file, error.line, error.message) for error in caught.value.errors]
    file = str(path)
    assert errors == [
        (file, 6, errors[0][2]),
        (file, 7, errors[1][2]),
        (file, 9, errors[2][2]),
        (file, 11, errors[3][2]),
    ]
    assert "list that proxy under trusted_proxies" in errors[0][2]
    assert errors[1][2].startswith("applications.wiki.upstream is not used in forward_auth mode")
    assert 'use identity "portal" or "header"' in errors[2][2]
    assert errors[3][2].startswith("applications.wiki.timeouts is not used in forward_auth mode")


def test_an_unknown_mode_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        HEAD + "applications:\n  wiki:\n    mode: forward-auth\n    upstream: http://127.0.0.1:9\n"
        "    hosts: ['*']\n    identity: portal\n    portal: {users_file: users.yaml}\n"
    )
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    [error] = caught.value.errors
    assert error.line == 6
    assert "proxy, forward_auth" in error.message
