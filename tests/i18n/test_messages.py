"""Texts, calls and emails in the recipient's language: a German company's (`language: de`)
codes and notices are German with no Accept-Language at all, its pages too; a sign-in in French
gets its code in French; English stays as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.identity.portal import hash_password
from tests.identity.test_codes import echo, submit, url
from tests.senders.fakes import FakeProvider, SmtpServer
from tests.senders.fixtures import sender_settings
from tests.support import portal_app, portal_login

USER, PASSWORD = "carol@example.com", "carol-password"
POLICY = """
company: Example Company
members:
  domains: [example.com]
methods:
  allowed: [sms, voice, email, totp]
enforce_2fa: true
"""
Gateway = TestClient[web.Request, web.Application]


@pytest.fixture
async def upstream() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def gateway(
    make_gateway: Any,
    upstream: TestServer,
    tmp_path: Path,
    provider: tuple[FakeProvider, str],
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str], Awaitable[Gateway]]:
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_password(PASSWORD)}'\n")
    senders = sender_settings(provider[1], smtp, monkeypatch, "GB")

    async def start(extra_policy: str = "") -> Gateway:
        app = portal_app(str(upstream.make_url("")), users)
        client: Gateway = await make_gateway(
            {"app": app}, policies={"example.yaml": POLICY + extra_policy}, senders=senders
        )
        return client

    return start


def subject_of(message: Any) -> str:
    return str(make_header(decode_header(message["Subject"]))).replace("\n", "")


async def signed_in(client: Gateway, **headers: str) -> aiohttp.ClientSession:
    browser = aiohttp.ClientSession(
        base_url=str(client.make_url("")),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        headers=headers,
    )
    assert (await portal_login(browser, USER, PASSWORD)).status == 303
    return browser


async def test_a_german_company_gets_german_codes_notices_and_pages(
    gateway: Any, provider: tuple[FakeProvider, str], smtp: SmtpServer
) -> None:
    fake, _ = provider
    client = await gateway("language: de\n")
    browser = await signed_in(client)
    try:
        page = await (await browser.get(url("enrol", "sms"))).text()
        assert '<html lang="de">' in page and "Fügen Sie Ihre Telefonnummer hinzu" in page
        sent = await submit(browser, url("enrol", "sms"), action="number", phone="+44 7400 123456")
        assert sent.status == 303
        text = fake.requests[-1].form["Body"]
        assert "ist Ihr Anmeldecode für Example Company" in text, text
        assert "Geben Sie ihn niemandem weiter." in text
        done = await submit(browser, url("enrol", "sms"), code=fake.last_code())
        assert done.status == 303
        _, notice = smtp.mailbox.messages[-1]
        assert subject_of(notice) == (
            "Ihre Zwei-Schritt-Anmeldung wurde geändert: eine Telefonnummer wurde hinzugefügt"
        )
        body = notice.get_payload(decode=True).decode()
        assert "Wenn Sie das waren, müssen Sie nichts tun." in body
        email = await submit(browser, url("enrol", "email"), action="send")
        assert email.status == 303
        _, message = smtp.mailbox.messages[-1]
        assert subject_of(message) == "Ihr Anmeldecode für Example Company"
    finally:
        await browser.close()


async def test_the_sign_in_language_wins_for_its_own_code(
    gateway: Any, provider: tuple[FakeProvider, str]
) -> None:
    fake, _ = provider
    client = await gateway("language: de\n")
    browser = await signed_in(client, **{"Accept-Language": "fr-FR,fr;q=0.9"})
    try:
        sent = await submit(
            browser, url("enrol", "voice"), action="number", phone="+44 7400 123456"
        )
        assert sent.status == 303
        spoken = fake.requests[-1].form["Twiml"]
        assert "Votre code de connexion à Example Company est" in spoken, spoken
    finally:
        await browser.close()


async def test_english_without_a_company_language(
    gateway: Any, provider: tuple[FakeProvider, str]
) -> None:
    fake, _ = provider
    client = await gateway()
    browser = await signed_in(client)
    try:
        await submit(browser, url("enrol", "sms"), action="number", phone="+44 7400 123456")
        assert "is your Example Company sign-in code" in fake.requests[-1].form["Body"]
    finally:
        await browser.close()


async def test_an_unknown_company_language_is_refused_by_the_loader(tmp_path: Path) -> None:
    from gateway.config_errors import ConfigInvalid
    from gateway.policy.loader import load_policy_dir

    (tmp_path / "example.yaml").write_text(POLICY + "language: tlh\n")
    with pytest.raises(ConfigInvalid) as raised:
        load_policy_dir(tmp_path)
    assert "language" in str(raised.value)
