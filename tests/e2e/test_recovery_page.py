"""The recovery codes page in Chromium: the codes kept by download (a text file, without
JavaScript too), by copy (the clipboard) and by print (a print stylesheet of just the codes); a
"Continue" button on to the application; wording that names the way the person actually signs
in (email, a passkey), never an authenticator app they do not have; axe-core clean and nothing
wider than the window at 320 and 1280 px.

    browser ──► `gateway run` (subprocess, at http://localhost) ──► legacy application (thread)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from gateway.demo.legacy import create_legacy_app
from tests.e2e.flow import (
    CHALLENGE_URL,
    ENROL_URL,
    app_sign_in,
    axe_report,
    enrol,
    enter_code,
    expect_application_home,
)
from tests.e2e.test_company_policy import Background
from tests.e2e.test_passkeys import virtual_authenticator
from tests.senders.fakes import outbox_messages
from tests.support import GatewayProcess, intercept_app, settings_dict

pytestmark = pytest.mark.browser

TOM = ("tom@example.com", "tom-password")  # an authenticator app
ERIN = ("erin@example.com", "erin-password")  # email codes
PAT = ("pat@example.com", "pat-password")  # a passkey
SITE = "Example Billing"
POLICY = f"""
company: Example Company
members:
  domains: [example.com]
methods:
  allowed: [totp, webauthn, email, recovery]
  default: totp
enforce_2fa: true
branding:
  name: {SITE}
"""
RECOVERY_URL = re.compile(r"/\.gateway/recovery\?rd=")
USED_URL = re.compile(r"/\.gateway/recovery/used\?rd=")
CODE = re.compile(r"\b[0-9a-z]{5}-[0-9a-z]{5}\b")
EMAILED = re.compile(r"\b([0-9]{6})\b")
SAVED = "I have saved these codes — continue"
NARROW: ViewportSize = {"width": 320, "height": 720}
WIDE: ViewportSize = {"width": 1280, "height": 900}
# Every element whose box leaves the window sideways (the page itself scrolling sideways too).
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push("the page is " + document.documentElement.scrollWidth + " px wide");
  }
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && (box.left < -0.5 || box.right > width + 0.5)) {
      found.push(el.outerHTML.slice(0, 80) + " spans " + box.left + " to " + box.right);
    }
  }
  return found;
}"""


@dataclass
class Gateway:
    url: str  # with the host name localhost (a passkey's RP ID cannot be an IP address)
    outbox: Path  # where the email sender writes each message


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The legacy application with `gateway run` in front, for a company that allows an app,
    passkeys, email and recovery codes."""
    background = Background()
    outbox = tmp_path / "outbox.log"
    try:
        legacy = background.serve(create_legacy_app(dict([TOM, ERIN, PAT])))
        settings = settings_dict(
            tmp_path / "run",
            {"legacy": intercept_app(legacy)},
            {"example.yaml": POLICY},
            senders={"email": {"kind": "outbox", "path": str(outbox)}},
        )
        process = GatewayProcess.run(tmp_path, settings)
        try:
            yield Gateway(process.url.replace("127.0.0.1", "localhost"), outbox)
        finally:
            process.stop()
    finally:
        background.close()


def emailed_code(outbox: Path, to: str) -> str:
    messages = [m for m in outbox_messages(outbox) if m["to"] == to]
    assert messages, f"no email to {to}"
    match = EMAILED.search(messages[-1]["text"])
    assert match, messages[-1]
    return match.group(1)


def shown_codes(page: Page) -> list[str]:
    """The codes in the page's list, once it is the page of a new set."""
    expect(page).to_have_url(RECOVERY_URL)
    items = page.get_by_role("list", name="Your 10 recovery codes").get_by_role("listitem")
    expect(items).to_have_count(10)
    codes = [text.strip() for text in items.all_inner_texts()]
    assert all(CODE.fullmatch(code) for code in codes), codes
    return codes


def downloaded(page: Page) -> tuple[str, str]:
    """Click the download link: the file's suggested name and its text."""
    with page.expect_download() as info:
        page.get_by_role("link", name="Download as a text file").click()
    download = info.value
    assert download.failure() is None, download.failure()
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def expect_file_holds(name: str, text: str, user: str, codes: list[str]) -> None:
    assert name == "recovery-codes-example-billing.txt"
    assert CODE.findall(text) == codes, text
    assert SITE in text and user in text
    now = datetime.now(UTC)  # the day the codes were made (a minute ago, across midnight)
    days = {(now - timedelta(minutes=minutes)).strftime("%Y-%m-%d") for minutes in (0, 1)}
    assert any(day in text for day in days), text


def page_text(page: Page) -> str:
    """Everything the page says, seen or not (hidden buttons, the title) — lower case."""
    return (page.title() + "\n" + (page.locator("body").text_content() or "")).lower()


def continue_on(page: Page, base: str, user: str, label: str = "Continue") -> None:
    page.get_by_role("button", name=label, exact=True).click()
    expect_application_home(page, base, user)


def test_codes_kept_without_javascript(browser: Browser, gateway: Gateway) -> None:
    """With scripting off, the new codes still download as a text file naming the site, the user
    and the day; the copy and print buttons (which need the script) stay hidden; "Continue" is
    a button that leads on to the application."""
    user, password = TOM
    context = browser.new_context(viewport=NARROW, java_script_enabled=False, accept_downloads=True)
    try:
        page = context.new_page()
        app_sign_in(page, gateway.url, user, password)
        enrol(page)
        codes = shown_codes(page)
        expect(page.get_by_role("button", name="Copy all codes")).to_be_hidden()
        expect(page.get_by_role("button", name="Print")).to_be_hidden()
        expect_file_holds(*downloaded(page), user, codes)
        continue_on(page, gateway.url, user, SAVED)
    finally:
        context.close()


def test_copy_print_download_and_continue(
    browser: Browser, context: BrowserContext, page: Page, gateway: Gateway
) -> None:
    """ "Copy all codes" puts every code on the clipboard and says "Copied" in a live region;
    printing shows the codes and nothing else; the download holds every code; "Continue" leads
    on. Later, the page says how many remain (with a Continue button too), and new codes are
    shown as new, with the old ones said to be void."""
    user, password = TOM
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.url)
    app_sign_in(page, gateway.url, user, password)
    enrol(page)
    codes = shown_codes(page)

    copy = page.get_by_role("button", name="Copy all codes")
    expect(copy).to_be_visible()
    copy.click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Copied")
    expect(status).to_have_attribute("aria-live", "polite")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert CODE.findall(clipboard) == codes, clipboard

    expect(page.get_by_role("button", name="Print")).to_be_visible()
    page.emulate_media(media="print")
    for code in codes:
        expect(page.get_by_text(code, exact=True)).to_be_visible()
    expect(page.get_by_text(f"For {user} at {SITE}")).to_be_visible()
    for hidden in (
        page.get_by_role("heading", level=1),
        page.get_by_role("link", name="Download as a text file"),
        page.get_by_role("button", name=SAVED),
        page.get_by_text("This is the only time these codes are shown."),
        page.get_by_role("banner"),
        page.get_by_role("contentinfo"),
    ):
        expect(hidden).to_be_hidden()
    page.emulate_media(media="screen")

    expect_file_holds(*downloaded(page), user, codes)
    continue_on(page, gateway.url, user, SAVED)

    page.goto(gateway.url + "/.gateway/recovery?rd=%2F")
    expect(page.get_by_text("10 codes remain.")).to_be_visible()
    continue_on(page, gateway.url, user)

    page.goto(gateway.url + "/.gateway/recovery?rd=%2F")
    page.get_by_role("button", name="Make new codes").click()
    expect(page.get_by_role("heading", name="Save your new recovery codes")).to_be_visible()
    expect(page.get_by_text("Your old recovery codes no longer work.")).to_be_visible()
    new = shown_codes(page)
    assert not set(new) & set(codes)
    expect_file_holds(*downloaded(page), user, new)
    continue_on(page, gateway.url, user, SAVED)


def sign_in_with_a_code(page: Page, base: str, user: str, password: str, code: str) -> None:
    """In a new browser: the password, "Try another way", a recovery code."""
    page.context.clear_cookies()
    app_sign_in(page, base, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    page.get_by_role("region", name="Try another way").get_by_role(
        "link", name="A recovery code"
    ).click()
    page.get_by_label("Recovery code").fill(code)
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(USED_URL)


def expect_no_app_wording(page: Page, state: str, way: str) -> None:
    text = page_text(page)
    assert "authenticator" not in text, f"{state}: {text}"
    assert way in text, f"{state}: {text}"


def test_wording_for_an_email_user(context: BrowserContext, page: Page, gateway: Gateway) -> None:
    """Someone who signs in with emailed codes reads about their email on every recovery page
    (new codes, the file, how many remain, new codes again, after signing in with a code),
    never about an authenticator app."""
    user, password = ERIN
    app_sign_in(page, gateway.url, user, password)
    expect(page).to_have_url(ENROL_URL)
    page.get_by_role("region", name="Or choose another method").get_by_role(
        "link", name="Email"
    ).click()
    with page.expect_navigation():
        page.get_by_role("button", name="Email me a code").click()
    expect(page.get_by_role("heading", name="Enter the code we emailed you")).to_be_visible()
    enter_code(page, emailed_code(gateway.outbox, user), "Confirm and continue")
    codes = shown_codes(page)
    expect(page.get_by_text("If you lose access to your email")).to_be_visible()
    expect_no_app_wording(page, "new codes", "your email")
    _name, text = downloaded(page)
    assert "authenticator" not in text.lower() and "your email" in text, text
    continue_on(page, gateway.url, user, SAVED)

    page.goto(gateway.url + "/.gateway/recovery?rd=%2F")
    expect_no_app_wording(page, "codes remaining", "your email")
    page.get_by_role("button", name="Make new codes").click()
    codes = shown_codes(page)
    expect_no_app_wording(page, "new codes again", "your email")
    continue_on(page, gateway.url, user, SAVED)

    sign_in_with_a_code(page, gateway.url, user, password, codes[0])
    expect_no_app_wording(page, "signed in with a code", "your email")
    continue_on(page, gateway.url, user)


def test_wording_for_a_passkey_user(context: BrowserContext, page: Page, gateway: Gateway) -> None:
    """Someone who signs in with a passkey reads about their passkey on the recovery pages, never
    about an authenticator app."""
    user, password = PAT
    virtual_authenticator(context, page)
    app_sign_in(page, gateway.url, user, password)
    expect(page).to_have_url(ENROL_URL)
    page.get_by_role("region", name="Or choose another method").get_by_role(
        "link", name="Passkey or security key"
    ).click()
    page.get_by_label("Name for this passkey").fill("Work laptop")
    page.get_by_role("button", name="Add passkey and continue").click()
    codes = shown_codes(page)
    expect(page.get_by_text("If you lose access to your passkey")).to_be_visible()
    expect_no_app_wording(page, "new codes", "your passkey")
    _name, text = downloaded(page)
    assert "authenticator" not in text.lower() and "your passkey" in text, text
    continue_on(page, gateway.url, user, SAVED)

    page.goto(gateway.url + "/.gateway/recovery?rd=%2F")
    expect_no_app_wording(page, "codes remaining", "your passkey")

    sign_in_with_a_code(page, gateway.url, user, password, codes[0])
    expect_no_app_wording(page, "signed in with a code", "your passkey")
    continue_on(page, gateway.url, user)


def expect_fits(page: Page, state: str, reports: dict[str, str]) -> None:
    """Nothing wider than the window, and no axe-core violations."""
    wide = page.evaluate(OVERFLOWING)
    assert not wide, f"{state}: wider than the window:\n" + "\n".join(wide)
    reports[state] = axe_report(page)


@pytest.mark.parametrize("viewport", [NARROW, WIDE], ids=["320px", "1280px"])
def test_pages_fit_and_pass_axe(browser: Browser, gateway: Gateway, viewport: ViewportSize) -> None:
    """At 320 and 1280 px wide, every state of the recovery pages (new codes, and after "Copy";
    how many remain; signed in with a code) fits the window and passes axe-core."""
    user, password = TOM
    context = browser.new_context(viewport=viewport)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.url)
    reports: dict[str, str] = {}
    try:
        page = context.new_page()
        app_sign_in(page, gateway.url, user, password)
        enrol(page)
        codes = shown_codes(page)
        expect_fits(page, "new codes", reports)
        page.get_by_role("button", name="Copy all codes").click()
        expect(page.get_by_role("status")).to_contain_text("Copied")
        expect_fits(page, "new codes, copied", reports)
        continue_on(page, gateway.url, user, SAVED)

        page.goto(gateway.url + "/.gateway/recovery?rd=%2F")
        expect(page.get_by_text("10 codes remain.")).to_be_visible()
        expect_fits(page, "codes remaining", reports)

        sign_in_with_a_code(page, gateway.url, user, password, codes[0])
        expect_fits(page, "signed in with a code", reports)
    finally:
        context.close()
    failed = {name: report for name, report in reports.items() if report}
    assert not failed, "axe-core violations:\n\n" + "\n\n".join(
        f"== {name}: {report}" for name, report in failed.items()
    )
