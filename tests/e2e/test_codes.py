"""Codes by text message and email in Chromium, against the demo (its outbox sender writes each
message to <data-dir>/outbox.log, where the test reads the code as a phone or mailbox would).

Bob of Globex (which allows SMS, calls and email) enrols a UK mobile and later signs in with a
text; in another run he enrols his email address and signs in with an emailed code. Every page
is scanned with axe-core. Between a send at enrolment and the next at sign-in, the test ages the
recorded sends in the demo's store by 31 seconds instead of waiting out the 30-second pause.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.flow import (
    CHALLENGE_URL,
    ENROL_URL,
    app_sign_in,
    axe_report,
    enter_code,
    expect_application_home,
    past_recovery_codes,
)
from tests.senders.fakes import outbox_messages
from tests.support import GatewayProcess

pytestmark = pytest.mark.browser

BOB = ("bob@globex.example", "globex-demo-1")
CODE = re.compile(r"\b([0-9]{6})\b")


def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "demo"  # GatewayProcess.demo's --data-dir


def last_code(tmp_path: Path, channel: str, to: str) -> str:
    messages = [
        m for m in outbox_messages(data_dir(tmp_path) / "outbox.log") if m["channel"] == channel
    ]
    assert messages, f"no {channel} message in the outbox"
    assert messages[-1]["to"] == to
    match = CODE.search(messages[-1]["text"])
    assert match, messages[-1]
    return match.group(1)


def age_sends(tmp_path: Path, seconds: float = 31) -> None:
    """Move the recorded sends back in time, as if the 30-second pause had passed."""
    with sqlite3.connect(data_dir(tmp_path) / "gateway.db") as db:
        db.execute("UPDATE sends SET at = at - ?", (seconds,))


def no_violations(reports: dict[str, str]) -> None:
    found = {name: report for name, report in reports.items() if report}
    assert not found, "\n\n".join(f"{name}:\n{report}" for name, report in found.items())


def test_phone_enrolment_and_sms_sign_in(
    demo: GatewayProcess, context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    """Enrolment offers "Text message (SMS)"; a UK mobile number gets a text whose code enrols
    it; a later sign-in asks for a text with a button and its code opens the application."""
    user, password = BOB
    reports: dict[str, str] = {}
    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(ENROL_URL)
    page.get_by_role("region", name="Or choose another method").get_by_role(
        "link", name="Text message (SMS)"
    ).click()
    expect(page.get_by_role("heading", name="Add your phone number")).to_be_visible()
    reports["phone number"] = axe_report(page)

    page.get_by_label("Mobile phone number").fill("+44 20 7946 0000")
    with page.expect_navigation():
        page.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_role("heading", name="This looks like a landline")).to_be_visible()
    expect(page.get_by_role("button", name="Call me at this number")).to_be_visible()
    reports["landline advice"] = axe_report(page)

    page.get_by_label("Mobile phone number").fill("+44 7400 123456")
    with page.expect_navigation():
        page.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_role("heading", name="Enter the code we texted you")).to_be_visible()
    expect(page.get_by_text("the number ending in 3456")).to_be_visible()
    reports["enrol: code"] = axe_report(page)
    code = last_code(tmp_path, "sms", "+447400123456")
    enter_code(page, f"{(int(code) + 1) % 10**6:06d}", "Confirm and continue")
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    reports["enrol: wrong code"] = axe_report(page)
    enter_code(page, code, "Confirm and continue")
    past_recovery_codes(page)  # Globex offers recovery codes: shown once, after the enrolment
    expect_application_home(page, demo.url, user)

    context.clear_cookies()
    age_sends(tmp_path)
    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    expect(page.get_by_role("heading", name="Text me a code")).to_be_visible()
    expect(page.get_by_role("region", name="Try another way")).to_contain_text("Phone call")
    reports["challenge: send"] = axe_report(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_role("heading", name="Enter the code we texted you")).to_be_visible()
    reports["challenge: code"] = axe_report(page)
    enter_code(page, last_code(tmp_path, "sms", "+447400123456"), "Verify")
    expect_application_home(page, demo.url, user)
    no_violations(reports)


def test_email_enrolment_and_sign_in(
    demo: GatewayProcess, context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    """Email enrolment sends a code to the user's own address; "Send again" too soon says how
    long to wait; a later sign-in by emailed code opens the application."""
    user, password = BOB
    reports: dict[str, str] = {}
    app_sign_in(page, demo.url, user, password)
    page.get_by_role("region", name="Or choose another method").get_by_role(
        "link", name="Email"
    ).click()
    expect(page.get_by_role("heading", name="Email me a code")).to_be_visible()
    expect(page.get_by_text("b•••b@globex.example")).to_be_visible()
    reports["email: send"] = axe_report(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Email me a code").click()
    expect(page.get_by_role("heading", name="Enter the code we emailed you")).to_be_visible()
    with page.expect_navigation():
        page.get_by_role("button", name="Send again").click()
    expect(page.get_by_role("alert")).to_contain_text("You can ask for another in")
    reports["email: too soon"] = axe_report(page)
    enter_code(page, last_code(tmp_path, "email", user), "Confirm and continue")
    past_recovery_codes(page)
    expect_application_home(page, demo.url, user)

    context.clear_cookies()
    age_sends(tmp_path)
    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    with page.expect_navigation():
        page.get_by_role("button", name="Email me a code").click()
    enter_code(page, last_code(tmp_path, "email", user), "Verify")
    expect_application_home(page, demo.url, user)
    no_violations(reports)
