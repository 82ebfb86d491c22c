"""A one-time code is used once, even when several answers with it race (each backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.scale.flows import accepted, browser, outbox_senders, race_email_code
from tests.support import intercept_app

POLICY = """
company: Example Company
members:
  domains: [example.com]
methods:
  allowed: [totp, email]
  codes:
    resend_after: 1s
enforce_2fa: true
"""


@pytest.mark.parametrize("store_backend", ["sqlite", "redis"], indirect=True)
async def test_racing_right_answers_use_a_code_once(
    make_gateway: Any, legacy_server: TestServer, tmp_path: Path
) -> None:
    """Six submissions of the right email code at once, in one pending sign-in: exactly one
    finishes the sign-in; the code is taken out of the store before it is checked."""
    outbox = tmp_path / "outbox.jsonl"
    client = await make_gateway(
        {"legacy": intercept_app(str(legacy_server.make_url("")))},
        policies={"example.yaml": POLICY},
        senders=outbox_senders(outbox),
    )
    base = str(client.make_url("")).rstrip("/")
    async with browser() as session:
        user = ("bob@example.com", "bob-password")
        answers = await race_email_code(session, [base] * 6, user, outbox)
    assert accepted(answers) == 1, [a[:2] for a in answers]
