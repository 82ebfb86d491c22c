"""A phone number set by a company admin, confirmed by the member at their next sign-in, over
HTTP against a real gateway (SQLite store, fixed clock):

    gateway (in-process) ──► fake provider (aiohttp, Twilio's API shape): texts and calls
                         ──► aiosmtpd (STARTTLS, login): factor notices

Until the member types the code sent to the new number, their codes go to the old one; "Not
now" keeps it and asks again next time; "This is not my number" drops the admin's number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from gateway.admin import PENDING_PHONE
from gateway.clock import FixedClock
from gateway.handlers.signin.codes import WRONG_CODE
from gateway.handlers.signin.phone_confirm import CANNOT_CONFIRM
from tests.admin.helpers import (
    ALICE,
    CAROL,
    Client,
    answer_challenge,
    audit_events,
    browser,
    capture_audit,
    csrf,
    gateway,
    password,
    runtime,
    seen,
    sign_in,
)
from tests.senders.fakes import (
    FakeProvider,
    SmtpServer,
)
from tests.senders.fixtures import sender_settings
from tests.support import csrf_from_page

CAROL_PAGE = f"/.gateway/admin/acme/members/{CAROL}"
OLD, NEW = "+447400111111", "+447400123456"  # Carol's enrolled mobile; the one Alice sets
LANDLINE = "+442079460000"
CONFIRM = "/.gateway/phone/confirm?rd=%2F"
SMS_CHALLENGE = "/.gateway/challenge?method=sms&rd=%2F"


@pytest.fixture
def senders(
    provider: tuple[FakeProvider, str], smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    return sender_settings(provider[1], smtp, monkeypatch, "GB")


@pytest.fixture
async def client(
    make_gateway: Any,
    tmp_path: Path,
    server: TestServer,
    clock: FixedClock,
    senders: dict[str, Any],
) -> Client:
    """Carol has an authenticator app and a mobile (OLD) for texts and calls."""
    made = await gateway(make_gateway, tmp_path, server, clock, senders=senders)
    rt = runtime(made)
    record = {
        "phone": rt.secrets.cipher.encrypt(OLD, f"phone:{CAROL}"),
        "line_type": "mobile",
        "created": 1.0,
    }
    for method in ("sms", "voice"):
        await rt.store.put_enrolment(CAROL, method, record)
    return made


async def admin_sets(client: Client, clock: FixedClock, phone: str = NEW) -> None:
    """Alice, Acme's admin, gives Carol a new phone number on Carol's member page."""
    await seen(client, CAROL, clock)
    await sign_in(client, ALICE, clock)
    done = await client.post(
        f"{CAROL_PAGE}/profile",
        data={"csrf_token": await csrf(client, CAROL_PAGE), "name": "Carol", "phone": phone},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == f"{CAROL_PAGE}?done=phone"


async def post(member: ClientSession, action: str, **fields: str) -> Any:
    page = await member.get(CONFIRM)
    assert page.status == 200, await page.text()
    token = csrf_from_page(await page.text())
    return await member.post(
        CONFIRM, data={"csrf_token": token, "action": action, **fields}, allow_redirects=False
    )


async def enrolled_phone(client: Client, method: str) -> str | None:
    rt = runtime(client)
    record = await rt.store.get_enrolment(CAROL, method)
    if record is None:
        return None
    return rt.secrets.cipher.decrypt(str(record["phone"]), f"phone:{CAROL}")


async def pending_facts(client: Client) -> set[str]:
    record = await runtime(client).store.get_user(CAROL)
    assert record is not None
    return {fact for fact in record.facts if fact.startswith("pending_phone")}


async def sms_sign_in(member: ClientSession, fake: FakeProvider, clock: FixedClock) -> str:
    """Carol's password, then a text message code; returns where the gateway sends her next
    and checks that the code went to her enrolled number."""
    clock.advance(30)
    assert (await password(member, CAROL)).startswith("/.gateway/challenge")
    page = await member.get(SMS_CHALLENGE)
    sent = await member.post(
        SMS_CHALLENGE,
        data={"csrf_token": csrf_from_page(await page.text()), "action": "send"},
        allow_redirects=False,
    )
    assert sent.status == 303, await sent.text()
    to = fake.requests[-1].form["To"]
    page = await member.get(SMS_CHALLENGE)
    done = await member.post(
        SMS_CHALLENGE,
        data={"csrf_token": csrf_from_page(await page.text()), "code": fake.last_code()},
        allow_redirects=False,
    )
    assert done.status == 303, await done.text()
    return f"{to} {done.headers['Location']}"


async def test_the_member_confirms_the_new_number(
    client: Client,
    clock: FixedClock,
    provider: tuple[FakeProvider, str],
    smtp: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After Carol's second factor the gateway asks her to confirm the number Alice set: a text
    to it, a wrong code counted and refused, the right one makes it the number of her texts
    and calls, the pending number goes, the change is audited and she is told by email. Her
    next text message code goes to the new number."""
    fake, _ = provider
    capture_audit(caplog)
    await admin_sets(client, clock)
    assert await pending_facts(client) == {"pending_phone", "pending_phone_line_type"}
    async with browser(client) as member:
        assert (
            (await member.get(CONFIRM, allow_redirects=False))
            .headers["Location"]
            .startswith("/.gateway/challenge")
        )  # a verified session is needed
        after = await answer_challenge(member, await password(member, CAROL), clock)
        assert after == CONFIRM
        page = await (await member.get(after)).text()
        assert "Your administrator set a new phone number ending in <strong>3456</strong>" in page
        assert "Text me a code" in page and "Not now" in page and "This is not my number" in page
        assert "<script" not in page and fake.requests == []  # nothing sent by opening it

        forged = await member.post(CONFIRM, data={"action": "send"}, allow_redirects=False)
        assert forged.status == 400 and fake.requests == []  # CSRF
        sent = await post(member, "send")
        assert sent.status == 303 and sent.headers["Location"] == CONFIRM
        [text] = fake.requests
        assert text.path.endswith("/Messages.json") and text.form["To"] == NEW
        page = await (await member.get(CONFIRM)).text()
        assert "We texted a 6-digit code to the number ending in" in page
        assert 'autocomplete="one-time-code"' in page

        code = fake.last_code()
        wrong = await post(member, "verify", code=f"{(int(code) + 1) % 10**6:06d}")
        html = await wrong.text()
        assert wrong.status == 401 and WRONG_CODE in html and "4 tries left for this code" in html
        assert 'aria-invalid="true"' in html
        [failure] = audit_events(caplog, "failure")
        assert failure["user"] == CAROL and failure["what"] == "sms"
        assert await enrolled_phone(client, "sms") == OLD  # refused: nothing changed

        done = await post(member, "verify", code=code)
        assert done.status == 303 and done.headers["Location"] == "/"
        assert await (await member.get("/")).text() == f"hello {CAROL}"

    assert await enrolled_phone(client, "sms") == NEW
    assert await enrolled_phone(client, "voice") == NEW
    sms = await runtime(client).store.get_enrolment(CAROL, "sms")
    assert sms is not None and sms["line_type"] == "mobile" and NEW not in str(sms)
    assert await pending_facts(client) == set()
    [confirmed] = audit_events(caplog, "phone_confirmed")
    assert confirmed["user"] == CAROL and confirmed["company"] == "acme"
    assert confirmed["ip"] == "127.0.0.1" and confirmed["request_id"]
    envelope, notice = smtp.mailbox.messages[-1]
    assert envelope.rcpt_tos == [CAROL] and "a new phone number was added" in notice["Subject"]

    async with browser(client) as later:
        assert await sms_sign_in(later, fake, clock) == f"{NEW} /"  # not asked again


async def test_not_now_keeps_the_old_number_and_asks_again(
    client: Client, clock: FixedClock, provider: tuple[FakeProvider, str]
) -> None:
    """While the new number waits, codes go to the old one and work; "Not now" continues with
    the old number and the pending one kept, and the next sign-in asks again."""
    fake, _ = provider
    await admin_sets(client, clock)
    async with browser(client) as member:
        assert await sms_sign_in(member, fake, clock) == f"{OLD} {CONFIRM}"
        later = await post(member, "later")
        assert later.status == 303 and later.headers["Location"] == "/"
        assert await (await member.get("/")).text() == f"hello {CAROL}"
    assert await enrolled_phone(client, "sms") == OLD
    assert await pending_facts(client) == {"pending_phone", "pending_phone_line_type"}
    assert all(request.form["To"] == OLD for request in fake.requests)

    async with browser(client) as again:
        assert await answer_challenge(again, await password(again, CAROL), clock) == CONFIRM


async def test_this_is_not_my_number_clears_it(
    client: Client,
    clock: FixedClock,
    provider: tuple[FakeProvider, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ "This is not my number": the admin's number is removed (audited), the old one stays,
    and the next sign-in goes straight to the application."""
    fake, _ = provider
    capture_audit(caplog)
    await admin_sets(client, clock)
    async with browser(client) as member:
        assert await answer_challenge(member, await password(member, CAROL), clock) == CONFIRM
        rejected = await post(member, "reject")
        assert rejected.status == 303 and rejected.headers["Location"] == "/"
        gone = await member.get(CONFIRM, allow_redirects=False)
        assert gone.status == 303 and gone.headers["Location"] == "/"
    assert await pending_facts(client) == set()
    assert await enrolled_phone(client, "sms") == OLD
    [event] = audit_events(caplog, "phone_rejected")
    assert event["user"] == CAROL and event["company"] == "acme" and event["request_id"]
    assert not audit_events(caplog, "phone_confirmed")
    async with browser(client) as again:
        assert await sms_sign_in(again, fake, clock) == f"{OLD} /"


async def test_a_landline_is_confirmed_by_a_call(
    client: Client, clock: FixedClock, provider: tuple[FakeProvider, str]
) -> None:
    """A landline cannot take texts: the code is read out in a call, and the number becomes
    Carol's for calls only (her old mobile no longer gets texts)."""
    fake, _ = provider
    await admin_sets(client, clock, LANDLINE)
    async with browser(client) as member:
        assert await answer_challenge(member, await password(member, CAROL), clock) == CONFIRM
        assert "Call me with a code" in await (await member.get(CONFIRM)).text()
        assert (await post(member, "send")).status == 303
        call = fake.requests[-1]
        assert call.path.endswith("/Calls.json") and call.form["To"] == LANDLINE
        page = await (await member.get(CONFIRM)).text()
        assert "We called the number ending in <strong>0000</strong>" in page
        assert (await post(member, "verify", code=fake.last_code())).status == 303
    assert await enrolled_phone(client, "voice") == LANDLINE
    assert await enrolled_phone(client, "sms") is None


async def test_without_a_phone_sender_the_number_cannot_be_confirmed(
    make_gateway: Any, tmp_path: Path, server: TestServer, clock: FixedClock
) -> None:
    """No text or call sender: the page says the number cannot be confirmed here and lets Carol
    continue; the number stays pending."""
    client = await gateway(make_gateway, tmp_path, server, clock, senders={})
    await admin_sets(client, clock)
    async with browser(client) as member:
        assert await answer_challenge(member, await password(member, CAROL), clock) == CONFIRM
        page = await (await member.get(CONFIRM)).text()
        assert CANNOT_CONFIRM in page and '<a href="/">Continue</a>' in page
        assert "Text me a code" not in page and "<form" not in page
    assert await pending_facts(client) == {"pending_phone", "pending_phone_line_type"}
    record = await runtime(client).store.get_user(CAROL)
    assert record is not None
    pending = runtime(client).secrets.cipher.decrypt(
        str(record.facts["pending_phone"]), PENDING_PHONE + CAROL
    )
    assert pending == NEW
