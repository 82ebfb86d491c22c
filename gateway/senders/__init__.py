"""Senders: how one-time codes and notices leave the gateway, one interface for every kind.

Sender            send_sms(to, text), place_call(to, text), send_email(to, subject, body)
  HttpProviderSender   a Twilio-compatible HTTP API: SMS and voice calls
  WebhookSender        a JSON POST to a URL of yours: SMS and voice calls
  SmtpSender           email over SMTP (STARTTLS or TLS, with authentication)
  OutboxSender         development: every message appended to a file and logged

SendFailed        raised by any sender that could not hand a message over; the message was
                  not sent, and the caller counts nothing as sent
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.settings import SenderConfig, SendersConfig


class SendFailed(Exception):
    """The message could not be handed over; the text says why, for the log (not the user)."""


class Sender(Protocol):
    async def send_sms(self, to: str, text: str) -> None: ...
    async def place_call(self, to: str, text: str) -> None: ...
    async def send_email(self, to: str, subject: str, body: str) -> None: ...
    async def close(self) -> None: ...


@dataclass
class Senders:
    """The sender of each channel; None where no sender is configured (the method is not
    offered). SMS and voice may share one sender."""

    sms: Sender | None = None
    voice: Sender | None = None
    email: Sender | None = None
    default_region: str = "US"

    async def close(self) -> None:
        closed: list[Sender] = []
        for sender in (self.sms, self.voice, self.email):
            if sender is not None and not any(sender is done for done in closed):
                closed.append(sender)
                await sender.close()


def build_senders(config: SendersConfig) -> Senders:
    """The senders the settings describe, their secrets read now (SettingsError when one is
    missing), so a gateway with a broken sender does not start."""
    built: dict[int, Sender] = {}

    def one(item: SenderConfig | None) -> Sender | None:
        if item is None:
            return None
        if id(item) not in built:
            built[id(item)] = _make(item)
        return built[id(item)]

    return Senders(
        sms=one(config.sms),
        voice=one(config.voice),
        email=one(config.email),
        default_region=config.default_region,
    )


def _make(config: SenderConfig) -> Sender:
    from gateway.senders.http import HttpProviderSender, WebhookSender
    from gateway.senders.outbox import OutboxSender
    from gateway.senders.smtp import SmtpSender

    if config.kind == "http":
        assert config.account_sid is not None and config.auth_token is not None
        return HttpProviderSender(
            config.base_url,
            config.account_sid.read(),
            config.auth_token.read(),
            config.sender,
            config.timeout,
        )
    if config.kind == "webhook":
        token = config.token.read() if config.token is not None else None
        return WebhookSender(config.url, token, config.timeout)
    if config.kind == "smtp":
        return SmtpSender(
            host=config.host,
            port=config.port,
            sender=config.sender,
            starttls=config.starttls,
            tls=config.tls,
            username=config.username or None,
            password=config.password.read() if config.password is not None else None,
            ca_file=config.ca_file,
            timeout=config.timeout,
        )
    assert config.path is not None
    return OutboxSender(config.path)
