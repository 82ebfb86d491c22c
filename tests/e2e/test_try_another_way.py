"""From a text message to a phone call with "Try another way", in Chromium 320 px wide, against
the demo (its outbox sender writes each text and call to <data-dir>/outbox.log, where the test
reads the code as the phone would) (issue 17, finding 1).

Bob of Globex enrols his UK mobile by text message, which enrols phone calls too. At his next
sign-in, straight after the enrolment (no waiting out a pause), he has a code texted, then
chooses "Phone call" under "Try another way": the call is placed at once and its page asks for
the code. "Call again" too soon says the code read out still works, with the field to enter it.
The called code opens the application. Every page is scanned with axe-core and fits 320 px.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.flow import (
    CHALLENGE_URL,
    CODE_LABEL,
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
NUMBER = "+447400123456"
NARROW: ViewportSize = {"width": 320, "height": 640}
TEXTED = re.compile(r"\b([0-9]{6})\b")
SPOKEN = re.compile(r"code is: ((?:[0-9], ){5}[0-9])")


@pytest.fixture
def narrow(browser: Browser) -> Iterator[Page]:
    """A fresh profile whose window is 320 px wide, the narrowest phone the pages are for."""
    context = browser.new_context(viewport=NARROW)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def last_code(tmp_path: Path, channel: str) -> str:
    """The code in the latest text ("sms") or call ("voice") to NUMBER."""
    sent = outbox_messages(tmp_path / "demo" / "outbox.log")  # GatewayProcess.demo's data dir
    messages = [m for m in sent if m["channel"] == channel]
    assert messages, f"no {channel} message in the outbox"
    assert messages[-1]["to"] == NUMBER
    match = (SPOKEN if channel == "voice" else TEXTED).search(messages[-1]["text"])
    assert match, messages[-1]
    return match.group(1).replace(", ", "")


def check(page: Page, name: str, reports: dict[str, str]) -> None:
    """axe-core's findings for this page, and that it fits the window (no sideways scroll)."""
    reports[name] = axe_report(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"{name}: {width} px wide"


def test_text_message_then_phone_call(demo: GatewayProcess, narrow: Page, tmp_path: Path) -> None:
    page = narrow
    user, password = BOB
    reports: dict[str, str] = {}
    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(ENROL_URL)
    page.get_by_role("region", name="Or choose another method").get_by_role(
        "link", name="Text message (SMS)"
    ).click()
    page.get_by_label("Mobile phone number").fill("+44 7400 123456")
    with page.expect_navigation():
        page.get_by_role("button", name="Text me a code").click()
    enter_code(page, last_code(tmp_path, "sms"), "Confirm and continue")
    past_recovery_codes(page)  # Globex offers recovery codes: shown once, after the enrolment
    expect_application_home(page, demo.url, user)

    page.context.clear_cookies()
    app_sign_in(page, demo.url, user, password)  # at once: the enrolment's text holds nothing
    expect(page).to_have_url(CHALLENGE_URL)
    with page.expect_navigation():
        page.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_role("heading", name="Enter the code we texted you")).to_be_visible()
    check(page, "text: code", reports)

    page.get_by_role("region", name="Try another way").get_by_role(
        "link", name="Phone call"
    ).click()
    expect(page.get_by_role("heading", name="Call me with a code")).to_be_visible()
    check(page, "call: ask", reports)
    with page.expect_navigation():
        page.get_by_role("button", name="Call me with a code").click()
    expect(page.get_by_role("heading", name="Enter the code from our call")).to_be_visible()
    expect(page.get_by_text("We called the number ending in 3456")).to_be_visible()
    expect(page.get_by_label(CODE_LABEL)).to_be_focused()
    check(page, "call: code", reports)

    with page.expect_navigation():
        page.get_by_role("button", name="Call again").click()
    expect(page.get_by_role("alert")).to_contain_text("still works: enter it below")
    expect(page.get_by_role("alert")).to_contain_text("You can ask for another call in")
    expect(page.get_by_label(CODE_LABEL)).to_be_visible()
    check(page, "call: too soon", reports)

    enter_code(page, last_code(tmp_path, "voice"), "Verify")
    expect_application_home(page, demo.url, user)
    found = {name: report for name, report in reports.items() if report}
    assert not found, "\n\n".join(f"{name}:\n{report}" for name, report in found.items())
