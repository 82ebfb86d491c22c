"""Fixtures for tests that send codes and notices: the local Twilio-shaped provider and a real
SMTP server (registered for every test module by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.senders.fakes import (
    SID,
    SMTP_PASSWORD,
    SMTP_USER,
    TOKEN,
    FakeProvider,
    SmtpServer,
    start_smtp,
)


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeProvider, str]]:
    """The fake provider and its base URL."""
    fake = FakeProvider()
    server = TestServer(fake.app())
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_smtp(tmp_path)
    yield server
    server.stop()


def sender_settings(
    provider_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, region: str
) -> dict[str, Any]:
    """The settings' `senders:`: SMS and calls through the fake provider, email through the real
    SMTP server; the credentials come from the environment."""
    monkeypatch.setenv("TEST_PROVIDER_SID", SID)
    monkeypatch.setenv("TEST_PROVIDER_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    return {
        "default_region": region,
        "sms": {
            "kind": "http",
            "base_url": provider_url,
            "account_sid": {"env": "TEST_PROVIDER_SID"},
            "auth_token": {"env": "TEST_PROVIDER_TOKEN"},
            "from": "+15005550006",
        },
        "voice": "sms",
        "email": {
            "kind": "smtp",
            "host": "127.0.0.1",
            "port": smtp.port,
            "starttls": True,
            "username": SMTP_USER,
            "password": {"env": "TEST_SMTP_PASSWORD"},
            "from": "Sign-in <gateway@mail.example>",
            "ca_file": str(smtp.cert),
        },
    }
