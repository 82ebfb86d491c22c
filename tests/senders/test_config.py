"""The senders section of the settings: each kind's fields, every mistake reported at once with
its line, credentials only by reference, and senders built with their secrets read at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.senders import build_senders
from gateway.senders.http import HttpProviderSender, WebhookSender
from gateway.senders.outbox import OutboxSender
from gateway.senders.smtp import SmtpSender
from gateway.settings import SecretSource, SettingsError, settings_from_dict
from gateway.yamlsource import ConfigInvalid, parse_yaml
from tests.support import settings_dict

ROOT = Path(__file__).resolve().parents[2]


def settings_with(tmp_path: Path, senders: Any) -> Any:
    data = settings_dict(tmp_path, {"app": {"upstream": "http://127.0.0.1:9", "hosts": ["*"],
                                            "identity": "portal",
                                            "portal": {"users_file": "users.yaml"}}},
                         senders=senders)  # fmt: skip
    return settings_from_dict(data, source=tmp_path / "gateway.yaml")


def test_the_example_documents_senders() -> None:
    from gateway.settings import load_settings

    senders = load_settings(ROOT / "gateway.example.yaml").senders
    assert senders.sms is not None and senders.sms.kind == "http"
    assert senders.voice is senders.sms  # `voice: sms`
    assert senders.sms.account_sid == SecretSource(env="TWILIO_ACCOUNT_SID")
    assert senders.email is not None and senders.email.kind == "smtp"
    assert senders.email.password == SecretSource(env="SMTP_PASSWORD")
    assert senders.default_region == "US"


def test_no_senders_section_means_no_code_methods(tmp_path: Path) -> None:
    built = build_senders(settings_with(tmp_path, None).senders)
    assert (built.sms, built.voice, built.email) == (None, None, None)


def test_every_kind_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """http and webhook for phones, smtp and outbox for email; a relative outbox path is taken
    from the settings file's directory; secrets are read when the senders are built."""
    monkeypatch.setenv("SID", "AC1")
    monkeypatch.setenv("TOKEN", "t")
    monkeypatch.setenv("HOOK", "h")
    monkeypatch.setenv("SMTP_PW", "p")
    config = settings_with(
        tmp_path,
        {
            "default_region": "gb",
            "sms": {"kind": "http", "base_url": "http://127.0.0.1:1234", "from": "+1500",
                    "account_sid": {"env": "SID"}, "auth_token": {"env": "TOKEN"}},
            "voice": {"kind": "webhook", "url": "https://hooks.example/x", "token": {"env": "HOOK"}},
            "email": {"kind": "smtp", "host": "mail.example", "tls": True, "username": "u",
                      "password": {"env": "SMTP_PW"}, "from": "g@mail.example"},
        },
    ).senders  # fmt: skip
    assert config.default_region == "GB"
    assert config.email.port == 465 and config.email.tls and not config.email.starttls
    built = build_senders(config)
    assert isinstance(built.sms, HttpProviderSender)
    assert isinstance(built.voice, WebhookSender)
    assert isinstance(built.email, SmtpSender)
    outbox = settings_with(tmp_path, {"email": {"kind": "outbox", "path": "out/mail.log"}})
    built = build_senders(outbox.senders)
    assert isinstance(built.email, OutboxSender) and built.email.path == tmp_path / "out/mail.log"


def test_a_missing_credential_stops_the_start(tmp_path: Path) -> None:
    config = settings_with(
        tmp_path,
        {"sms": {"kind": "http", "from": "+1500", "account_sid": {"env": "NO_SUCH_SID_X"},
                 "auth_token": {"env": "NO_SUCH_TOKEN_X"}}},
    )  # fmt: skip
    with pytest.raises(SettingsError, match="NO_SUCH_SID_X is not set"):
        build_senders(config.senders)


def test_mistakes_are_all_reported_with_lines() -> None:
    text = """\
listen: {port: 8080}
secrets:
  session_keys: {env: K}
  encryption_key: {env: E}
applications:
  app: {upstream: "http://127.0.0.1:9", hosts: ["*"], identity: header}
trusted_proxies: [127.0.0.1]
senders:
  default_region: UK
  sms:
    kind: smtp
  voice:
    kind: http
    base_url: "https://user:pw@api.example"
    account_sid: AC123
    auth_token: {env: T}
  email:
    kind: smtp
    host: mail.example
    from: nobody
    username: u
    smtpport: 25
"""
    document = parse_yaml(text, "gateway.yaml")
    from gateway.settings import _validate

    with pytest.raises(ConfigInvalid) as caught:
        _validate(document, Path("gateway.yaml"))
    errors = [str(error) for error in caught.value.errors]
    expected = [
        'gateway.yaml:9: "UK" is not a region code such as "US" or "GB"',
        "gateway.yaml:11: senders.sms.kind must be one of http, webhook, outbox",
        'gateway.yaml:12: missing required setting "senders.voice.from"',
        "gateway.yaml:14: senders.voice.base_url must not hold a user name or password",
        "gateway.yaml:15: senders.voice.account_sid must say where the secret is kept",
        "gateway.yaml:17: senders.email.username and senders.email.password go together",
        "gateway.yaml:20: senders.email.from must be an email address",
        'gateway.yaml:22: unknown setting "smtpport" in senders.email',
    ]
    for line in expected:
        assert any(error.startswith(line) for error in errors), (line, errors)
    assert not any("AC123" in error or "pw@" in error for error in errors)  # never echoed
