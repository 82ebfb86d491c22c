"""Email over SMTP with aiosmtplib: STARTTLS (or TLS from the start) and authentication."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

import aiosmtplib

from gateway.senders import SendFailed
from gateway.senders.base import ChannelSender


def is_single_address(text: str) -> bool:
    """Exactly one bare address, nothing that could become a second recipient or a header."""
    if any(ord(c) < 0x21 or c in ',;<>"()\\' for c in text):
        return False
    name, address = parseaddr(text)
    return not name and address == text and text.count("@") == 1


class SmtpSender(ChannelSender):
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = True,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._host, self._port, self._from = host, port, sender
        self._starttls, self._tls = starttls, tls
        self._username, self._password = username, password
        self._timeout = timeout
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    async def send_email(self, to: str, subject: str, body: str) -> None:
        if not is_single_address(to):
            raise SendFailed("email: the recipient is not one plain email address")
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self._from.rpartition("@")[2].strip(">") or None)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        try:
            await aiosmtplib.send(
                message,
                recipients=[to],  # never the To header's list: it names exactly this one
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._tls,
                start_tls=self._starttls if not self._tls else False,
                tls_context=self._context,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            raise SendFailed(f"email: {self._host}:{self._port} refused it: {exc}") from exc
