"""Fixtures of the identity tests: the senders of text messages, calls and emails (the SMS
provider the suite fakes by its API, and aiosmtpd), for UK numbers; a module may define its own
`senders` for another region."""

from __future__ import annotations

from typing import Any

import pytest

from tests.senders.fakes import FakeProvider, SmtpServer
from tests.senders.fixtures import sender_settings


@pytest.fixture
def senders(
    provider: tuple[FakeProvider, str], smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    return sender_settings(provider[1], smtp, monkeypatch, "GB")
