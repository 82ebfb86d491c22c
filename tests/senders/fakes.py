"""Stand-ins for the outside world of senders: an HTTP server speaking Twilio's API shape (and a
JSON webhook), and a real SMTP server (aiosmtpd) with STARTTLS and authentication."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import free_port

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "provider-token-123"
SMTP_USER, SMTP_PASSWORD = "gateway@mail.example", "smtp-password-123"
CODE_RE = re.compile(r"\b([0-9]{6})\b")
SPOKEN_RE = re.compile(r"code is: ((?:[0-9], ){5}[0-9])")


@dataclass
class Received:
    path: str
    authorization: str | None
    form: dict[str, str]
    body: Any = None


@dataclass
class FakeProvider:
    """Answers like Twilio's REST API (201 with a message or call sid), or with `status`."""

    status: int = 201
    requests: list[Received] = field(default_factory=list)
    delay: float = 0.0  # seconds before answering, like a provider far away

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/{kind}.json", self._twilio)
        app.router.add_post("/hook", self._hook)
        return app

    async def _twilio(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(Received(request.path, request.headers.get("Authorization"), form))
        await asyncio.sleep(self.delay)
        if self.status >= 300:
            return web.json_response({"message": "provider trouble"}, status=self.status)
        return web.json_response({"sid": "SM" + "0" * 32, "status": "queued"}, status=201)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Received(request.path, request.headers.get("Authorization"), {}, body))
        return web.Response(status=self.status if self.status >= 300 else 204)

    def last_code(self) -> str:
        """The code in the last message: from an SMS body, or a call's spoken digits."""
        last = self.requests[-1]
        text = last.form.get("Body") or last.form.get("Twiml") or str(last.body)
        spoken = SPOKEN_RE.search(text)
        if spoken:
            return spoken.group(1).replace(", ", "")
        match = CODE_RE.search(text)
        assert match, f"no code in {text!r}"
        return match.group(1)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Mailbox:
    """aiosmtpd's handler: keeps what arrives, or refuses it with 554 when `refuse` is set."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.refuse = False
        self.arrived = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "554 5.7.1 Message refused"
        assert isinstance(envelope.content, bytes)
        self.messages.append((envelope, message_from_bytes(envelope.content)))
        self.arrived.set()
        return "250 OK"

    def last_code(self) -> str:
        _, message = self.messages[-1]
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        match = CODE_RE.search(payload.decode())
        assert match
        return match.group(1)


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    controller: Controller
    mailbox: Mailbox
    port: int
    cert: Path

    def stop(self) -> None:
        self.controller.stop()


def start_smtp(directory: Path) -> SmtpServer:
    """A real SMTP server on a free port that requires STARTTLS and a password."""
    cert, key = self_signed(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticate,
        server_hostname="localhost",
    )
    controller.start()
    return SmtpServer(controller, mailbox, port, cert)


def outbox_messages(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
