"""Codes by SMS, voice call and email over HTTP, in portal mode with an upstream that echoes.

    gateway (in-process) ──► fake provider (aiohttp, Twilio's API shape): SMS and calls
                         ──► aiosmtpd (STARTTLS, login): email codes and factor notices

Phone enrolment by line type, sign-in by each channel, the 10-minute and cooldown edges with a
fixed clock, five tries, the hourly cap, binding to the session, and senders that fail.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FixedClock
from gateway.factors.codes import all_sends_key
from gateway.handlers.signin.codes import NO_CODE, WRONG_CODE
from gateway.identity.portal import hash_password
from gateway.keys import RUNTIME
from gateway.runtime import Runtime
from tests.senders.fakes import (
    SID,
    TOKEN,
    FakeProvider,
    SmtpServer,
)
from tests.senders.fixtures import sender_settings
from tests.support import csrf_from_page, portal_app, portal_login

USER, PASSWORD = "carol@example.com", "carol-password"
T0 = 1_700_000_000.0
POLICY = """
company: Example Company
members:
  domains: [example.com]
account_type: partner
methods:
  allowed: [sms, voice, email, totp]
enforce_2fa: true
"""
UK_MOBILE, UK_LANDLINE, US_NUMBER = "+44 7400 123456", "+44 20 7946 0000", "+1 201 555 0123"
Gateway = TestClient[web.Request, web.Application]
Browser = aiohttp.ClientSession


async def echo(request: web.Request) -> web.Response:
    return web.Response(text=f"application page {request.path}")


@pytest.fixture
async def upstream() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def senders(
    provider: tuple[FakeProvider, str], smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    return sender_settings(provider[1], smtp, monkeypatch, "US")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def gateway(
    make_gateway: Any,
    upstream: TestServer,
    tmp_path: Path,
    senders: dict[str, Any],
    clock: FixedClock,
) -> Callable[..., Awaitable[Gateway]]:
    """A gateway on a fixed clock: tests move it past the 30-second pause between sends."""
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_password(PASSWORD)}'\n")

    async def start(**overrides: Any) -> Gateway:
        app = portal_app(str(upstream.make_url("")), users)
        options = {"senders": senders, **overrides}
        client: Gateway = await make_gateway(
            {"app": app}, policies={"example.yaml": POLICY}, clock=clock, **options
        )
        return client

    return start


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[[Gateway], Browser]]:
    opened: list[Browser] = []

    def new(client: Gateway) -> Browser:
        session = aiohttp.ClientSession(
            base_url=str(client.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        opened.append(session)
        return session

    yield new
    for session in opened:
        await session.close()


def runtime_of(client: Gateway) -> Runtime:
    return client.server.app[RUNTIME]


def url(kind: str, method: str) -> str:
    return f"/.gateway/{kind}?method={method}&rd=%2F"


async def submit(browser: Browser, target: str, **fields: str) -> aiohttp.ClientResponse:
    """The page's form: its CSRF token from a GET of the same address, then the POST."""
    html = await (await browser.get(target)).text()
    return await browser.post(
        target, data={"csrf_token": csrf_from_page(html), **fields}, allow_redirects=False
    )


async def signed_in(client: Gateway, browsers: Callable[[Gateway], Browser]) -> Browser:
    browser = browsers(client)
    login = await portal_login(browser, USER, PASSWORD)
    assert login.status == 303
    return browser


async def enrol_mobile(browser: Browser, fake: FakeProvider) -> None:
    sent = await submit(browser, url("enrol", "sms"), action="number", phone=UK_MOBILE)
    assert sent.status == 303 and sent.headers["Location"] == url("enrol", "sms")
    done = await submit(browser, url("enrol", "sms"), code=fake.last_code())
    assert done.status == 303 and done.headers["Location"] == "/"


async def test_phone_enrolment_then_sms_sign_in(
    gateway: Any,
    browsers: Any,
    provider: tuple[FakeProvider, str],
    smtp: SmtpServer,
    clock: FixedClock,
) -> None:
    """A UK mobile: the number page, a text to +447400123456 through the provider (basic auth),
    a wrong code counted, the right one enrols SMS (and voice) with the number encrypted, and a
    notice is emailed. A later sign-in asks for a text by a button and accepts its code."""
    fake, _ = provider
    client = await gateway()
    browser = await signed_in(client, browsers)
    form = await (await browser.get(url("enrol", "sms"))).text()
    assert 'autocomplete="tel"' in form and 'type="tel"' in form
    assert "Mobile phone number" in form and "Authenticator app" in form  # another way

    sent = await submit(browser, url("enrol", "sms"), action="number", phone=UK_MOBILE)
    assert sent.status == 303
    [request] = fake.requests
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.authorization == aiohttp.encode_basic_auth(SID, TOKEN)
    assert request.form["To"] == "+447400123456" and request.form["From"] == "+15005550006"
    assert "is your Example Company sign-in code" in request.form["Body"]
    page = await (await browser.get(url("enrol", "sms"))).text()
    assert "We texted a 6-digit code to" in page and "the number ending in 3456" in page
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page
    assert "Send again" in page and "Use a different number" in page

    code = fake.last_code()
    wrong = await submit(browser, url("enrol", "sms"), code=f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status == 401
    assert WRONG_CODE in await wrong.text()
    assert "You have 4 more tries before this sign-in ends" in await wrong.text()
    done = await submit(browser, url("enrol", "sms"), code=code)
    assert done.status == 303 and done.headers["Location"] == "/"
    assert await (await browser.get("/")).text() == "application page /"

    store = runtime_of(client).store
    assert sorted(await store.list_methods(USER)) == ["sms", "voice"]
    record = await store.get_enrolment(USER, "sms")
    assert record is not None and record["line_type"] == "mobile"
    assert "7400123456" not in str(record)  # encrypted at rest
    envelope, notice = smtp.mailbox.messages[-1]
    assert envelope.rcpt_tos == [USER] and "a phone number was added" in notice["Subject"]

    clock.advance(30)
    second = await signed_in(client, browsers)
    challenge = await second.get("/.gateway/challenge?rd=%2F")
    html = await challenge.text()
    assert "Text me a code" in html and "the number ending in 3456" in html
    assert len(fake.requests) == 1  # nothing is sent by opening the page
    assert url("challenge", "voice").replace("&", "&amp;") in html  # "try another way"
    asked = await submit(second, url("challenge", "sms"), action="send")
    assert asked.status == 303 and len(fake.requests) == 2
    answer = await submit(second, url("challenge", "sms"), code=fake.last_code())
    assert answer.status == 303 and answer.headers["Location"] == "/"
    assert await (await second.get("/")).text() == "application page /"


async def test_voice_sign_in_reads_the_code_out(
    gateway: Any, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """With "try another way", a phone call: Calls.json with TwiML saying the digits."""
    fake, _ = provider
    client = await gateway()
    await enrol_mobile(await signed_in(client, browsers), fake)
    clock.advance(30)
    browser = await signed_in(client, browsers)
    asked = await submit(browser, url("challenge", "voice"), action="send")
    assert asked.status == 303
    call = fake.requests[-1]
    assert call.path.endswith("/Calls.json") and call.form["To"] == "+447400123456"
    assert re.fullmatch(r"<Response><Say>.*code is: ([0-9], ){5}[0-9]\.</Say></Response>",
                        call.form["Twiml"])  # fmt: skip
    answer = await submit(browser, url("challenge", "voice"), code=fake.last_code())
    assert answer.status == 303 and answer.headers["Location"] == "/"


async def test_landline_us_and_invalid_numbers(
    gateway: Any, browsers: Any, provider: tuple[FakeProvider, str]
) -> None:
    """For SMS, a UK landline is offered a call and an authenticator app; a US number is said
    to be of unknown type with the same offers; an invalid number gets a plain message. None is
    texted. The offered call then enrols voice only, with the advice to use an app."""
    fake, _ = provider
    client = await gateway()
    browser = await signed_in(client, browsers)
    landline = await submit(browser, url("enrol", "sms"), action="number", phone=UK_LANDLINE)
    html = await landline.text()
    assert landline.status == 200 and "looks like a landline" in html
    assert "Call me at this number" in html and 'value="+442079460000"' in html
    assert "set up an authenticator app" in html
    us = await (await submit(browser, url("enrol", "sms"), action="number", phone=US_NUMBER)).text()
    assert "We cannot tell whether <strong>+12015550123</strong> is a mobile" in us
    assert "US and Canadian numbers do not say" in us and "Call me at this number" in us
    invalid = await submit(browser, url("enrol", "sms"), action="number", phone="+1 12")
    text = await invalid.text()
    assert invalid.status == 400 and "That phone number is not valid." in text
    assert 'role="alert"' in text and 'aria-invalid="true"' in text
    assert fake.requests == []

    called = await submit(browser, url("enrol", "voice"), action="number", phone="+442079460000")
    assert called.status == 303 and fake.requests[-1].path.endswith("/Calls.json")
    page = await (await browser.get(url("enrol", "voice"))).text()
    assert "We called <strong>the number ending in 0000</strong> and read out a 6-digit" in page
    assert "A landline ties your sign-in to your desk" in page
    done = await submit(browser, url("enrol", "voice"), code=fake.last_code())
    assert done.status == 303
    assert await runtime_of(client).store.list_methods(USER) == ["voice"]


async def test_ten_minute_edge(
    gateway: Any, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """A code typed 599 s after it was sent works; at 600 s it has expired (not counted as a
    wrong code: there is nothing left to guess)."""
    fake, _ = provider
    client = await gateway()
    browser = await signed_in(client, browsers)
    await submit(browser, url("enrol", "sms"), action="number", phone=UK_MOBILE)
    clock.advance(600)
    late = await submit(browser, url("enrol", "sms"), code=fake.last_code())
    assert late.status == 400 and NO_CODE in await late.text()

    other = await signed_in(client, browsers)
    await submit(other, url("enrol", "sms"), action="number", phone=UK_MOBILE)
    clock.advance(599)
    in_time = await submit(other, url("enrol", "sms"), code=fake.last_code())
    assert in_time.status == 303 and in_time.headers["Location"] == "/"


async def test_resend_cooldown_and_hourly_cap(
    gateway: Any, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """Send again: refused 29 s after a send, allowed at 30 s, and the new code replaces the
    old. The sixth send within an hour is refused; only five reached the provider."""
    fake, _ = provider
    client = await gateway()
    browser = await signed_in(client, browsers)
    await submit(browser, url("enrol", "sms"), action="number", phone=UK_MOBILE)
    first_code = fake.last_code()
    clock.advance(29)
    early = await submit(browser, url("enrol", "sms"), action="send")
    assert early.status == 429
    assert "You can ask for another in 1 second." in await early.text()
    clock.advance(1)
    again = await submit(browser, url("enrol", "sms"), action="send")
    assert again.status == 303 and len(fake.requests) == 2
    for _ in range(3):
        clock.advance(30)
        assert (await submit(browser, url("enrol", "sms"), action="send")).status == 303
    clock.advance(30)
    capped = await submit(browser, url("enrol", "sms"), action="send")
    assert capped.status == 429 and len(fake.requests) == 5
    html = await capped.text()
    assert "5 codes have been texted to the number ending in 3456 in the last hour" in html
    assert "another in 58 minutes" in html  # the first send leaves the hour at T0 + 3600

    if fake.last_code() != first_code:
        old = await submit(browser, url("enrol", "sms"), code=first_code)
        assert old.status == 401
    done = await submit(browser, url("enrol", "sms"), code=fake.last_code())
    assert done.status == 303


async def test_five_wrong_codes_end_the_sign_in(
    gateway: Any, browsers: Any, provider: tuple[FakeProvider, str]
) -> None:
    """Wrong codes count toward the limit like authenticator codes: the fifth ends the pending
    session (and voids the code); the password is needed again."""
    fake, _ = provider
    client = await gateway()
    browser = await signed_in(client, browsers)
    await submit(browser, url("enrol", "sms"), action="number", phone=UK_MOBILE)
    code = fake.last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        answer = await submit(browser, url("enrol", "sms"), code=wrong)
        assert answer.status == 401 and f"You have {left} more tr" in await answer.text()
    html = await (await browser.get(url("enrol", "sms"))).text()
    final = await browser.post(
        url("enrol", "sms"),
        data={"csrf_token": csrf_from_page(html), "code": wrong},
        allow_redirects=False,
    )
    assert final.status == 429 and "Too many wrong codes" in await final.text()
    gone = await browser.get(url("enrol", "sms"), allow_redirects=False)
    assert gone.status == 303 and gone.headers["Location"].startswith("/.gateway/login")


async def test_a_code_is_bound_to_the_session_and_used_once(
    gateway: Any, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """A code sent for one login does not work in another login of the same user; after it
    signed in, its record is gone."""
    fake, _ = provider
    client = await gateway()
    await enrol_mobile(await signed_in(client, browsers), fake)
    clock.advance(30)
    first = await signed_in(client, browsers)
    assert (await submit(first, url("challenge", "sms"), action="send")).status == 303
    code = fake.last_code()
    second = await signed_in(client, browsers)
    elsewhere = await submit(second, url("challenge", "sms"), code=code)
    assert elsewhere.status == 400 and NO_CODE in await elsewhere.text()
    ok = await submit(first, url("challenge", "sms"), code=code)
    assert ok.status == 303
    rt = runtime_of(client)
    codes_left = rt.store._run("SELECT COUNT(*) FROM codes").fetchone()[0]  # type: ignore[attr-defined]
    assert codes_left == 0


async def test_email_enrolment_and_sign_in(
    gateway: Any, browsers: Any, smtp: SmtpServer, clock: FixedClock
) -> None:
    """The address is the user name; the code arrives by SMTP (STARTTLS, login); it enrols
    email, a notice follows; a later sign-in by email works the same way."""
    client = await gateway()
    browser = await signed_in(client, browsers)
    page = await (await browser.get(url("enrol", "email"))).text()
    assert "We will email a 6-digit code to" in page and "c•••l@example.com" in page
    assert (await submit(browser, url("enrol", "email"), action="send")).status == 303
    envelope, message = smtp.mailbox.messages[-1]
    assert envelope.rcpt_tos == [USER] and message["Subject"] == "Your Example Company sign-in code"
    done = await submit(browser, url("enrol", "email"), code=smtp.mailbox.last_code())
    assert done.status == 303 and done.headers["Location"] == "/"
    record = await runtime_of(client).store.get_enrolment(USER, "email")
    assert record is not None and USER not in str(record)
    assert "an email address was added" in smtp.mailbox.messages[-1][1]["Subject"]

    clock.advance(30)
    later = await signed_in(client, browsers)
    challenge = await (await later.get("/.gateway/challenge?rd=%2F")).text()
    assert "Email me a code" in challenge
    assert (await submit(later, url("challenge", "email"), action="send")).status == 303
    answer = await submit(later, url("challenge", "email"), code=smtp.mailbox.last_code())
    assert answer.status == 303 and answer.headers["Location"] == "/"


async def test_failing_provider_says_so_and_counts_nothing(
    gateway: Any,
    browsers: Any,
    provider: tuple[FakeProvider, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The provider answers 500: the page says plainly the code could not be sent and offers
    the other methods; no send is counted and no code is kept; the failure is logged. Once the
    provider is back, a send goes out at once (no cooldown from the failure)."""
    fake, _ = provider
    fake.status = 500
    client = await gateway()
    browser = await signed_in(client, browsers)
    with caplog.at_level(logging.WARNING, logger="gateway.challenge"):
        failed = await submit(browser, url("enrol", "sms"), action="number", phone=UK_MOBILE)
    html = await failed.text()
    assert failed.status == 503
    assert "The code could not be sent just now" in html and "choose another way below" in html
    assert "Authenticator app" in html and "Email" in html and 'role="alert"' in html
    assert "Text me a code" in html  # try again when it suits
    assert "could not be sent: sms: " in caplog.text and "answered 500" in caplog.text
    rt = runtime_of(client)
    assert await rt.store.sends_since(all_sends_key(USER), 0) == []
    assert rt.store._run("SELECT COUNT(*) FROM codes").fetchone()[0] == 0  # type: ignore[attr-defined]
    fake.status = 201
    retry = await submit(browser, url("enrol", "sms"), action="send")
    assert retry.status == 303


async def test_refusing_smtp_server_says_so(gateway: Any, browsers: Any, smtp: SmtpServer) -> None:
    smtp.mailbox.refuse = True
    client = await gateway()
    browser = await signed_in(client, browsers)
    failed = await submit(browser, url("enrol", "email"), action="send")
    assert failed.status == 503 and "The code could not be sent just now" in await failed.text()
    assert await runtime_of(client).store.sends_since(all_sends_key(USER), 0) == []


async def test_without_senders_the_methods_are_not_offered(gateway: Any, browsers: Any) -> None:
    client = await gateway(senders={})
    browser = await signed_in(client, browsers)
    page = await (await browser.get("/.gateway/enrol?rd=%2F")).text()
    assert "Text message" not in page and "Email" not in page
    assert (await browser.get(url("enrol", "sms"))).status == 404


async def test_racing_sends_cannot_pass_the_cooldown(
    gateway: Any, browsers: Any, provider: tuple[FakeProvider, str]
) -> None:
    """Twenty simultaneous "text me" requests to twenty numbers, with a slow provider: one
    message goes out (the send slot is reserved before delivery), not twenty."""
    fake, _ = provider
    fake.delay = 0.3
    browser = await signed_in(await gateway(), browsers)
    html = await (await browser.get(url("enrol", "sms"))).text()
    token = csrf_from_page(html)
    answers = await asyncio.gather(
        *(
            browser.post(
                url("enrol", "sms"),
                data={"csrf_token": token, "action": "number", "phone": f"+44 7400 1234{i:02d}"},
                allow_redirects=False,
            )
            for i in range(20)
        )
    )
    assert len(fake.requests) == 1
    assert sum(1 for answer in answers if answer.status == 429) == 19
