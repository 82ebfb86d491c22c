"""How often a code may be sent, over HTTP (issue 17, finding 1): the pause between sends is per
sign-in and method, the hourly cap per user, method and destination, with a larger cap on all
of a user's sends together; a page that says a code was sent always has the field to enter it,
and "Send again" says that a new code went out.

    gateway (in-process, fixed clock) ──► fake provider (Twilio's API shape): texts and calls
                                      ──► aiosmtpd: email codes and factor notices

Run on SQLite and on Redis (the keys are opaque strings to both).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.clock import FixedClock
from gateway.identity.portal import hash_password
from tests.senders.fakes import FakeProvider, SmtpServer
from tests.senders.fixtures import sender_settings
from tests.support import csrf_from_page, portal_app, portal_login

pytestmark = pytest.mark.parametrize("store_backend", ["sqlite", "redis"], indirect=True)

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
MOBILE = "+44 7400 123456"
CODE_FIELD = 'id="code" name="code"'
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
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
async def client(
    make_gateway: Any,
    upstream: TestServer,
    tmp_path: Path,
    provider: tuple[FakeProvider, str],
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    clock: FixedClock,
) -> Gateway:
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_password(PASSWORD)}'\n")
    gateway: Gateway = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)},
        policies={"example.yaml": POLICY},
        clock=clock,
        senders=sender_settings(provider[1], smtp, monkeypatch, "GB"),
    )
    return gateway


@pytest.fixture
async def browsers(client: Gateway) -> AsyncIterator[Callable[[], Awaitable[Browser]]]:
    """New browsers, each signed in with the password (a pending sign-in of its own)."""
    opened: list[Browser] = []

    async def signed_in() -> Browser:
        browser = aiohttp.ClientSession(
            base_url=str(client.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        opened.append(browser)
        assert (await portal_login(browser, USER, PASSWORD)).status == 303
        return browser

    yield signed_in
    for browser in opened:
        await browser.close()


def url(kind: str, method: str) -> str:
    return f"/.gateway/{kind}?method={method}&rd=%2F"


async def submit(browser: Browser, target: str, **fields: str) -> aiohttp.ClientResponse:
    """The page's form: its CSRF token from a GET of the same address, then the POST."""
    html = await (await browser.get(target)).text()
    return await browser.post(
        target, data={"csrf_token": csrf_from_page(html), **fields}, allow_redirects=False
    )


def words(html: str) -> str:
    """The page's text, one space between words (markup dropped)."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


async def enrol_mobile(browser: Browser, fake: FakeProvider) -> None:
    """Text message (and so phone call) enrolled with MOBILE: one text sent."""
    sent = await submit(browser, url("enrol", "sms"), action="number", phone=MOBILE)
    assert sent.status == 303
    done = await submit(browser, url("enrol", "sms"), code=fake.last_code())
    assert done.status == 303 and done.headers["Location"] == "/"


async def test_a_call_right_after_a_text_is_placed_and_its_code_asked_for(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """Text message, then at once "Try another way" -> phone call: the call goes out, the page
    has the code field, and the called code signs in."""
    fake, _ = provider
    await enrol_mobile(await browsers(), fake)
    clock.advance(60)
    browser = await browsers()
    assert (await submit(browser, url("challenge", "sms"), action="send")).status == 303
    texts = len(fake.requests)

    called = await submit(browser, url("challenge", "voice"), action="send")
    assert called.status == 303, words(await called.text())
    assert len(fake.requests) == texts + 1 and fake.requests[-1].path.endswith("/Calls.json")
    page = await (await browser.get(url("challenge", "voice"))).text()
    assert CODE_FIELD in page and "We called the number ending in 3456" in words(page)
    answer = await submit(browser, url("challenge", "voice"), code=fake.last_code())
    assert answer.status == 303 and answer.headers["Location"] == "/"


async def test_the_send_at_enrolment_does_not_hold_back_the_next_sign_in(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str]
) -> None:
    """Enrolled by a text a moment ago (the clock has not moved), a new sign-in's first
    "Text me a code" sends one."""
    fake, _ = provider
    await enrol_mobile(await browsers(), fake)
    browser = await browsers()
    sent = await submit(browser, url("challenge", "sms"), action="send")
    assert sent.status == 303, words(await sent.text())
    assert len(fake.requests) == 2
    answer = await submit(browser, url("challenge", "sms"), code=fake.last_code())
    assert answer.status == 303 and answer.headers["Location"] == "/"


async def test_the_cap_of_texts_leaves_calls(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """Five texts in the hour (one at enrolment): the sixth is refused, saying when and
    offering another way, with the field for the latest code; a call still goes out, and its
    code signs in."""
    fake, _ = provider
    await enrol_mobile(await browsers(), fake)
    browser = await browsers()
    for _ in range(4):
        clock.advance(30)
        assert (await submit(browser, url("challenge", "sms"), action="send")).status == 303
    clock.advance(30)
    capped = await submit(browser, url("challenge", "sms"), action="send")
    text = words(await capped.text())
    assert capped.status == 429 and len(fake.requests) == 5
    assert "5 codes have been texted to the number ending in 3456 in the last hour" in text
    assert "The latest code still works: enter it below." in text
    assert "You can ask for another in 58 minutes, or choose another way below." in text
    assert CODE_FIELD in await capped.text()

    called = await submit(browser, url("challenge", "voice"), action="send")
    assert called.status == 303 and len(fake.requests) == 6
    answer = await submit(browser, url("challenge", "voice"), code=fake.last_code())
    assert answer.status == 303 and answer.headers["Location"] == "/"


async def test_the_cap_holds_across_sign_ins_per_method_and_number(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """A new sign-in has no pause to wait, but the texts to one number are capped across
    sign-ins: the sixth in the hour is refused in a fresh sign-in too (no code field: none
    was sent to it), and is allowed again once the first send leaves the hour."""
    fake, _ = provider
    await enrol_mobile(await browsers(), fake)
    for _ in range(4):
        clock.advance(1)
        sent = await submit(await browsers(), url("challenge", "sms"), action="send")
        assert sent.status == 303
    clock.advance(1)
    browser = await browsers()
    refused = await submit(browser, url("challenge", "sms"), action="send")
    html = await refused.text()
    assert refused.status == 429 and len(fake.requests) == 5
    assert "You can ask for another in 60 minutes, or choose another way below." in words(html)
    assert CODE_FIELD not in html and "still works" not in html
    clock.advance(3600 - 5)
    later = await submit(await browsers(), url("challenge", "sms"), action="send")
    assert later.status == 303 and len(fake.requests) == 6


async def test_number_after_number_at_enrolment_stops_at_the_overall_cap(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """Someone with the password who types one number after another at enrolment: each number
    has its own cap, but all the sends of one user stop at three times it (15 an hour)."""
    fake, _ = provider
    statuses = []
    for i in range(16):
        clock.advance(1)
        browser = await browsers()
        number = f"+44 7400 1234{i:02d}"
        answer = await submit(browser, url("enrol", "sms"), action="number", phone=number)
        statuses.append(answer.status)
    assert statuses == [303] * 15 + [429] and len(fake.requests) == 15
    assert "15 codes have been sent to you in the last hour" in words(await answer.text())


async def test_a_page_that_says_a_code_was_sent_has_the_code_field(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """ "Send again" too soon: the page says the code sent 10 seconds ago still works, has the
    field to enter it, and says when to ask again. Another number typed too soon after the
    first (whose code is gone): the page says when to ask, and does not say a code was sent."""
    fake, _ = provider
    browser = await browsers()
    await submit(browser, url("enrol", "sms"), action="number", phone=MOBILE)
    clock.advance(10)
    early = await submit(browser, url("enrol", "sms"), action="send", again="yes")
    html = await early.text()
    text = words(html)
    assert early.status == 429 and len(fake.requests) == 1
    assert CODE_FIELD in html and 'role="alert"' in html
    assert (
        "The code we texted to the number ending in 3456 10 seconds ago still works: enter it "
        "below. You can ask for another in 20 seconds." in text
    )

    other = await browsers()
    await submit(other, url("enrol", "voice"), action="number", phone=MOBILE)
    assert (await submit(other, url("enrol", "voice"), action="change")).status == 303
    clock.advance(5)
    too_soon = await submit(other, url("enrol", "voice"), action="number", phone="+447400123499")
    html = await too_soon.text()
    assert too_soon.status == 429
    assert "You can ask for a new code in 25 seconds. Then press “Call me with a code”." in html
    assert CODE_FIELD not in html and "sent a moment ago" not in html


async def test_send_again_says_a_new_code_was_sent(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """After "Send again" the page confirms it, once; the code before it no longer works and
    the new one does."""
    fake, _ = provider
    browser = await browsers()
    await submit(browser, url("enrol", "sms"), action="number", phone=MOBILE)
    first = fake.last_code()
    page = await (await browser.get(url("enrol", "sms"))).text()
    assert 'name="again" value="yes"' in page and 'role="status"' not in page
    clock.advance(30)
    again = await submit(browser, url("enrol", "sms"), action="send", again="yes")
    assert again.status == 303 and len(fake.requests) == 2
    page = await (await browser.get(url("enrol", "sms"))).text()
    assert re.search(
        r'<p id="sent-again" role="status">A new code was texted to the number ending in 3456\. '
        r"Enter that code: codes sent before it no longer work\.</p>",
        page,
    )
    assert CODE_FIELD in page
    assert 'role="status"' not in await (await browser.get(url("enrol", "sms"))).text()
    if first != fake.last_code():
        assert (await submit(browser, url("enrol", "sms"), code=first)).status == 401
    done = await submit(browser, url("enrol", "sms"), code=fake.last_code())
    assert done.status == 303 and done.headers["Location"] == "/"


async def test_call_again_says_a_new_call_was_made(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    fake, _ = provider
    browser = await browsers()
    await submit(browser, url("enrol", "voice"), action="number", phone=MOBILE)
    clock.advance(30)
    assert (await submit(browser, url("enrol", "voice"), action="send", again="yes")).status == 303
    assert len(fake.requests) == 2 and fake.requests[-1].path.endswith("/Calls.json")
    page = words(await (await browser.get(url("enrol", "voice"))).text())
    assert (
        "We called the number ending in 3456 again and read out a new code. Enter that code: "
        "codes read out before it no longer work." in page
    )


async def test_the_email_page_shows_the_address_once_masked(
    client: Gateway, browsers: Any, smtp: SmtpServer
) -> None:
    """The code goes to the address the person signed in with: shown once, masked, before and
    after the send (not also in full as "signed in as")."""
    browser = await browsers()
    before = await (await browser.get(url("enrol", "email"))).text()
    assert "We will email a 6-digit code to c•••l@example.com." in words(before)
    assert USER not in before
    assert (await submit(browser, url("enrol", "email"), action="send")).status == 303
    after = await (await browser.get(url("enrol", "email"))).text()
    assert "We emailed a 6-digit code to c•••l@example.com." in words(after)
    assert USER not in after and CODE_FIELD in after


async def test_a_new_codes_tries_never_outnumber_the_sign_ins(
    client: Gateway, browsers: Any, provider: tuple[FakeProvider, str], clock: FixedClock
) -> None:
    """Three wrong answers to one text, then a new text: its first wrong answer said "4 tries
    left for this code", though the sign-in ends at the next wrong answer (5 in a row). The
    page now says the sooner limit, and it holds (issue 17: tries left for every code method)."""
    fake, _ = provider
    await enrol_mobile(await browsers(), fake)
    clock.advance(60)
    browser = await browsers()
    await submit(browser, url("challenge", "sms"), action="send")
    wrong = f"{(int(fake.last_code()) + 1) % 10**6:06d}"
    for _ in range(3):
        refused = await submit(browser, url("challenge", "sms"), code=wrong)
        assert refused.status == 401
    assert "You have 2 more tries before this sign-in ends" in words(await refused.text())
    clock.advance(31)
    await submit(browser, url("challenge", "sms"), action="send")
    wrong = f"{(int(fake.last_code()) + 1) % 10**6:06d}"
    refused = await submit(browser, url("challenge", "sms"), code=wrong)
    text = words(await refused.text())
    assert "You have 1 more try before this sign-in ends" in text, text
    assert "tries left for this code" not in text
    last = await submit(browser, url("challenge", "sms"), code=wrong)
    assert last.status != 401  # the sign-in ended, as the page said
    assert "sign in again" in words(await last.text()).lower()


async def test_a_codes_own_limit_is_said_when_it_comes_first(
    make_gateway: Any,
    upstream: TestServer,
    tmp_path: Path,
    provider: tuple[FakeProvider, str],
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    clock: FixedClock,
) -> None:
    """A policy allowing 2 tries per code: the first wrong answer says 1 try left for this
    code (the sign-in would allow 4 more)."""
    users = tmp_path / "users.yaml"
    users.write_text(f"users:\n  {USER}:\n    password: '{hash_password(PASSWORD)}'\n")
    policy = POLICY.replace("totp]\n", "totp]\n  codes: {tries: 2}\n")
    client = await make_gateway(
        {"app": portal_app(str(upstream.make_url("")), users)},
        policies={"example.yaml": policy},
        clock=clock,
        senders=sender_settings(provider[1], smtp, monkeypatch, "GB"),
    )
    async with aiohttp.ClientSession(
        base_url=str(client.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as browser:
        await portal_login(browser, USER, PASSWORD)
        await submit(browser, url("enrol", "sms"), action="number", phone=MOBILE)
        wrong = f"{(int(provider[0].last_code()) + 1) % 10**6:06d}"
        refused = await submit(browser, url("enrol", "sms"), code=wrong)
        text = words(await refused.text())
        assert refused.status == 401 and "1 try left for this code." in text, text
