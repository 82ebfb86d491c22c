"""The portal.ldap settings: what they become, and every mistake reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.identity.ldap import Directory
from gateway.settings import SettingsError, settings_from_dict
from gateway.settings.model import Ldap, LdapGroups, SecretSource
from gateway.yamlsource import ConfigInvalid
from tests.support import settings_dict


def _settings(tmp_path: Path, portal: dict[str, Any]) -> Any:
    app = {"upstream": "http://127.0.0.1:9", "hosts": ["*"], "identity": "portal", "portal": portal}
    return settings_from_dict(settings_dict(tmp_path, {"wiki": app}), tmp_path / "gateway.yaml")


def _errors(tmp_path: Path, portal: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        _settings(tmp_path, portal)
    return [error.message for error in caught.value.errors]


def test_search_then_bind_settings(tmp_path: Path) -> None:
    ldap = {
        "url": "ldaps://dc1.corp.example",
        "ca_file": "corp-ca.pem",
        "bind_dn": "CN=gateway,OU=Services,DC=corp,DC=example",
        "bind_password": {"file": "ldap-password"},
        "base_dn": "DC=corp,DC=example",
        "user_filter": "(&(sAMAccountName={user})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
        "user_attribute": "sAMAccountName",
        "groups": {"attribute": "memberOf", "base_dn": "OU=Groups,DC=corp,DC=example"},
        "timeout": "3s",
        "pool_size": 8,
    }
    [app] = _settings(tmp_path, {"ldap": ldap}).applications
    assert app.portal.users_file is None
    assert app.portal.ldap == Ldap(
        url="ldaps://dc1.corp.example",
        base_dn="DC=corp,DC=example",
        ca_file=tmp_path / "corp-ca.pem",
        bind_dn="CN=gateway,OU=Services,DC=corp,DC=example",
        bind_password=SecretSource(file=tmp_path / "ldap-password"),
        user_filter=ldap["user_filter"],
        user_attribute="sAMAccountName",
        groups=LdapGroups(attribute="memberOf", base_dn="OU=Groups,DC=corp,DC=example"),
        timeout=3.0,
        pool_size=8,
    )


def test_every_mistake_at_once(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        {
            "ldap": {
                "url": "ldaps://dc1.corp.example/dc=corp?x",
                "start_tls": True,
                "bind_dn": "cn=gateway",
                "bind_password": "hunter2",
                "user_dn": "uid=fixed",
                "user_filter": "uid={user}",
                "groups": {"attribute": "memberOf", "filter": "(member={dn})"},
                "pool": 3,
            }
        },
    )
    text = "\n".join(errors)
    assert "hunter2" not in text
    for expected in (
        'unknown setting "pool"',
        "must be a URL such as",
        "start_tls is for ldap:// URLs",
        "give bind_dn (search, then bind as the user) or user_dn (direct bind), not both",
        "must say where the secret is kept",
        "needs base_dn",
        'user_dn must hold "{user}" once',
        'must be a filter in parentheses holding "{user}"',
        "groups needs base_dn: the one container whose groups count",
        "filter is for a search of groups under base_dn, not with attribute",
    ):
        assert expected in text, (expected, errors)


def test_one_of_users_file_or_ldap(tmp_path: Path) -> None:
    both = {"users_file": "users.yaml", "ldap": {"url": "ldap://x", "user_dn": "uid={user}"}}
    assert any("takes users_file" in e for e in _errors(tmp_path, both))
    neither = {"ldap": {"url": "ldap://x"}}
    assert any("needs bind_dn and bind_password" in e for e in _errors(tmp_path, neither))


def test_a_ca_file_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    ldap = {"url": "ldap://127.0.0.1:9", "start_tls": True, "ca_file": "missing.pem"}
    ldap["user_dn"] = "uid={user},dc=example"
    settings = _settings(tmp_path, {"ldap": ldap})
    with pytest.raises(SettingsError, match=r"cannot use the CA file .*missing\.pem"):
        Directory(settings.applications[0].portal.ldap)


def test_a_password_in_the_clear_is_a_settings_error(tmp_path: Path) -> None:
    """ldap:// without StartTLS would send every password in the clear: refused at start unless
    allow_plaintext says so (a directory on this very host); ldaps:// and StartTLS need no
    such word, and take none."""
    ldap: dict[str, Any] = {"url": "ldap://dc1.corp.example", "user_dn": "uid={user},dc=corp"}
    [error] = _errors(tmp_path, {"ldap": ldap})
    assert "in the clear" in error and "allow_plaintext" in error
    [app] = _settings(tmp_path, {"ldap": {**ldap, "allow_plaintext": True}}).applications
    assert app.portal.ldap.url == "ldap://dc1.corp.example"
    for tls in ({"start_tls": True}, {"url": "ldaps://dc1.corp.example"}):
        assert _settings(tmp_path, {"ldap": {**ldap, **tls}}).applications
        [error] = _errors(tmp_path, {"ldap": {**ldap, **tls, "allow_plaintext": True}})
        assert "allow_plaintext is for ldap:// URLs without start_tls" in error
