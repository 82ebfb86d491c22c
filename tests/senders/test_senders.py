"""Each sender against what it talks to: a Twilio-shaped HTTP API and a webhook (what they
received is checked, basic auth and bearer token included), a real SMTP server with STARTTLS and
authentication, and the outbox file; every failure is a SendFailed."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from gateway.senders import SendFailed
from gateway.senders.http import HttpProviderSender, WebhookSender
from gateway.senders.outbox import OutboxSender
from gateway.senders.smtp import SmtpSender
from tests.senders.fakes import (
    SID,
    SMTP_PASSWORD,
    SMTP_USER,
    TOKEN,
    FakeProvider,
    SmtpServer,
    outbox_messages,
)
from tests.support import free_port


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_provider_sms_and_call(provider: tuple[FakeProvider, str]) -> None:
    """An SMS is a form POST to Messages.json, a call one to Calls.json with TwiML that says the
    text (escaped); both with the account sid and token as basic auth."""
    fake, url = provider
    sender = HttpProviderSender(url + "/", SID, TOKEN, "+15005550006")
    try:
        await sender.send_sms("+447400123456", "123456 is your code")
        await sender.place_call("+442079460000", "Your code is: 1, 2 & 3")
    finally:
        await sender.close()
    sms, call = fake.requests
    assert sms.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert sms.authorization == basic(SID, TOKEN)
    assert sms.form == {
        "To": "+447400123456",
        "From": "+15005550006",
        "Body": "123456 is your code",
    }
    assert call.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    assert call.authorization == basic(SID, TOKEN)
    assert call.form == {
        "To": "+442079460000",
        "From": "+15005550006",
        "Twiml": "<Response><Say>Your code is: 1, 2 &amp; 3</Say></Response>",
    }


async def test_provider_errors_are_send_failures(provider: tuple[FakeProvider, str]) -> None:
    """A 500 from the provider, or nobody listening, raises SendFailed naming the trouble."""
    fake, url = provider
    fake.status = 500
    sender = HttpProviderSender(url, SID, TOKEN, "+15005550006")
    nowhere = HttpProviderSender(f"http://127.0.0.1:{free_port()}", SID, TOKEN, "+1", timeout=2)
    try:
        with pytest.raises(SendFailed, match="answered 500"):
            await sender.send_sms("+447400123456", "x")
        with pytest.raises(SendFailed, match="could not be reached"):
            await nowhere.place_call("+447400123456", "x")
        with pytest.raises(SendFailed, match="does not send email"):
            await sender.send_email("a@b.example", "s", "b")
    finally:
        await sender.close()
        await nowhere.close()


async def test_webhook(provider: tuple[FakeProvider, str]) -> None:
    """JSON {channel, to, text} with the bearer token; without a token, no Authorization."""
    fake, url = provider
    with_token, without = WebhookSender(url + "/hook", "hook-token"), WebhookSender(url + "/hook")
    try:
        await with_token.send_sms("+447400123456", "hello")
        await without.place_call("+12015550123", "call")
        fake.status = 503
        with pytest.raises(SendFailed, match="answered 503"):
            await without.send_sms("+447400123456", "x")
    finally:
        await with_token.close()
        await without.close()
    first, second, _ = fake.requests
    assert first.body == {"channel": "sms", "to": "+447400123456", "text": "hello"}
    assert first.authorization == "Bearer hook-token"
    assert second.body == {"channel": "voice", "to": "+12015550123", "text": "call"}
    assert second.authorization is None


async def test_smtp_with_starttls_and_login(smtp: SmtpServer) -> None:
    """A message reaches a real SMTP server over STARTTLS (its self-signed certificate trusted
    through ca_file) after logging in; the headers say who and what."""
    sender = SmtpSender(
        "127.0.0.1",
        smtp.port,
        "Sign-in <gateway@mail.example>",
        username=SMTP_USER,
        password=SMTP_PASSWORD,
        ca_file=smtp.cert,
    )
    await sender.send_email("alice@acme.example", "Your code", "Your code is 123456\n")
    envelope, message = smtp.mailbox.messages[-1]
    assert envelope.rcpt_tos == ["alice@acme.example"]
    assert envelope.mail_from == "gateway@mail.example"
    assert message["Subject"] == "Your code" and message["To"] == "alice@acme.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert smtp.mailbox.last_code() == "123456"


async def test_smtp_failures(smtp: SmtpServer) -> None:
    """A wrong password, an untrusted certificate, a refused message and a closed port all raise
    SendFailed."""
    cases = [
        SmtpSender(
            "127.0.0.1", smtp.port, "g@mail.example", username=SMTP_USER, password="wrong",
            ca_file=smtp.cert,
        ),
        SmtpSender(
            "127.0.0.1", smtp.port, "g@mail.example", username=SMTP_USER, password=SMTP_PASSWORD
        ),  # the system's CAs do not know the test certificate
        SmtpSender("127.0.0.1", free_port(), "g@mail.example", timeout=2),
    ]  # fmt: skip
    for sender in cases:
        with pytest.raises(SendFailed):
            await sender.send_email("alice@acme.example", "s", "b")
    smtp.mailbox.refuse = True
    refused = SmtpSender(
        "127.0.0.1", smtp.port, "g@mail.example", username=SMTP_USER, password=SMTP_PASSWORD,
        ca_file=smtp.cert,
    )  # fmt: skip
    with pytest.raises(SendFailed, match="refused"):
        await refused.send_email("alice@acme.example", "s", "b")
    assert smtp.mailbox.messages == []


async def test_outbox_writes_json_lines_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "outbox.log"
    sender = OutboxSender(path)
    with caplog.at_level(logging.INFO, logger="gateway.outbox"):
        await sender.send_sms("+447400123456", "123456 is your code")
        await sender.place_call("+442079460000", "1, 2, 3")
        await sender.send_email("a@b.example", "Subject", "line one\nline two")
    sms, call, email = outbox_messages(path)
    assert (sms["channel"], sms["to"], sms["text"]) == (
        "sms",
        "+447400123456",
        "123456 is your code",
    )
    assert (call["channel"], email["channel"], email["subject"]) == ("voice", "email", "Subject")
    assert "outbox: email to a@b.example: line one | line two" in caplog.text
    path.unlink()
    path.mkdir()  # not writable as a file
    with pytest.raises(SendFailed, match="cannot write"):
        await sender.send_sms("+447400123456", "x")
    assert json.dumps(sms)  # plain JSON


def test_only_one_plain_address_is_a_recipient() -> None:
    """Lists, display names and header-breaking characters are refused before any SMTP."""
    from gateway.senders.smtp import is_single_address

    assert is_single_address("alice@acme.example")
    for bad in (
        "a@b.example, x@evil.example",
        "a@b.example\r\nBcc: x@evil.example",
        "Alice <a@b.example>",
        "a@b.example;x@evil.example",
        "no-at-sign",
        "a@b@c.example",
        "a @b.example",
    ):
        assert not is_single_address(bad), bad
