"""Every page the gateway serves, scanned with axe-core in Chromium, and the enrolment page's
layout on a phone and on a desktop. The demo application's own pages are not ours: not scanned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from gateway.handlers.signin.totp import WRONG_CODE
from gateway.identity.portal import hash_password
from gateway.sessions import MAX_FAILURES
from tests.browser import DESKTOP, PHONE, SMALL_PHONE
from tests.e2e.flow import (
    ALICE,
    CHALLENGE_URL,
    ENROL_URL,
    app_sign_in,
    axe_report,
    code_now,
    enrol,
    enrolment_secret,
    enter_code,
    expect_application_home,
    expect_code_refused,
    past_recovery_codes,
    wrong_code,
)
from tests.support import GatewayProcess, free_port, intercept_app, settings_dict

pytestmark = pytest.mark.browser

PORTAL_USER = ("carol@example.com", "carol-password")
# The text of an element as the browser laid it out, one string per line.
RENDERED_LINES = """element => {
  const text = element.firstChild, range = document.createRange(), lines = [];
  let top = null;
  for (let i = 0; i < text.length; i++) {
    range.setStart(text, i);
    range.setEnd(text, i + 1);
    const rect = range.getClientRects()[0];
    if (!rect) continue;
    if (top === null || Math.abs(rect.top - top) > 2) lines.push("");
    top = rect.top;
    lines[lines.length - 1] += text.data[i];
  }
  return lines;
}"""


@pytest.fixture
def unreachable_and_portal(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway (`gateway run`) with two applications: at 127.0.0.1 one whose upstream does not
    answer (the 502 page), at localhost one in portal mode (the gateway's own login page)."""
    dead = f"http://127.0.0.1:{free_port()}"
    users = tmp_path / "users.yaml"
    users.write_text(
        f"users:\n  {PORTAL_USER[0]}:\n    password: '{hash_password(PORTAL_USER[1])}'\n"
    )
    applications = {
        "down": intercept_app(dead, hosts=["127.0.0.1"]),
        "portal": {
            "upstream": dead,
            "hosts": ["localhost"],
            "identity": "portal",
            "portal": {"users_file": str(users)},
        },
    }
    process = GatewayProcess.run(tmp_path, settings_dict(tmp_path / "run", applications))
    try:
        yield process
    finally:
        process.stop()


class Scans:
    """axe-core results per page, so one run reports every page with violations at once."""

    def __init__(self) -> None:
        self.reports: dict[str, str] = {}

    def scan(self, name: str, page: Page) -> None:
        self.reports[name] = axe_report(page)

    def assert_clean(self) -> None:
        failed = {name: report for name, report in self.reports.items() if report}
        assert not failed, "axe-core violations:\n\n" + "\n\n".join(
            f"== {name}: {report}" for name, report in failed.items()
        )


def test_every_gateway_page_passes_axe(
    demo: GatewayProcess,
    unreachable_and_portal: GatewayProcess,
    browser: Browser,
    context: BrowserContext,
    page: Page,
) -> None:
    """Every page the gateway serves (enrolment, challenge, sign-out, login, and its error pages,
    with and without their error messages) has no axe-core violations."""
    scans = Scans()
    user, password = ALICE

    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(ENROL_URL)
    scans.scan("enrol", page)
    secret = enrolment_secret(page)
    enter_code(page, wrong_code(secret), "Confirm and continue")
    expect_code_refused(page, WRONG_CODE)
    scans.scan("enrol, wrong code", page)
    enrol(page)
    scans.scan("recovery codes, after the enrolment", page)
    past_recovery_codes(page)
    expect_application_home(page, demo.url, user)

    page.goto(demo.url + "/.gateway/logout")
    expect(page.get_by_text(f"You are signed in as {user}")).to_be_visible()
    scans.scan("sign-out, signed in", page)
    page.get_by_role("button", name="Sign out").click()
    page.goto(demo.url + "/.gateway/logout")
    expect(page.get_by_text("You are not signed in.")).to_be_visible()
    scans.scan("sign-out, not signed in", page)

    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    challenge = page.url
    scans.scan("challenge", page)
    enter_code(page, wrong_code(secret), "Verify")
    expect_code_refused(page, WRONG_CODE)
    scans.scan("challenge, wrong code", page)

    context.clear_cookies(name="gateway_csrf")
    enter_code(page, code_now(secret, steps_ahead=1), "Verify")
    expect(page.get_by_text("did not come from this site")).to_be_visible()
    scans.scan("400 form without its CSRF cookie", page)

    page.goto(challenge)  # a new CSRF cookie and token
    for _ in range(MAX_FAILURES - 1):  # one wrong code was entered above
        enter_code(page, wrong_code(secret), "Verify")
    expect(page.get_by_role("heading", name="Too many wrong codes")).to_be_visible()
    scans.scan("429 too many wrong codes", page)

    page.goto(demo.url + "/.gateway/challenge")
    expect(page.get_by_text("Your sign-in has expired or was not started.")).to_be_visible()
    scans.scan("403 challenge without a sign-in", page)

    page.goto(demo.url + "/.gateway/no-such-page")
    expect(page.get_by_text("There is no gateway page at this address.")).to_be_visible()
    scans.scan("404 gateway page", page)

    context.clear_cookies()
    context.add_cookies([{"name": "legacy_session", "value": "0" * 32, "url": demo.url}])
    page.goto(demo.url + "/")
    expect(page.get_by_role("heading", name="Please sign in again")).to_be_visible()
    scans.scan("403 application cookie without its session", page)

    down = unreachable_and_portal.url
    response = page.goto(down + "/")
    assert response is not None and response.status == 502
    expect(page.get_by_role("heading", name="The application is not answering")).to_be_visible()
    scans.scan("502 application unreachable", page)

    portal = down.replace("127.0.0.1", "localhost")
    page.goto(portal + "/")
    expect(page).to_have_url(portal + "/.gateway/login?rd=%2F")
    scans.scan("portal login", page)
    page.get_by_label("User name or email").fill(PORTAL_USER[0])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("The user name or password is not right")
    scans.scan("portal login, wrong password", page)

    scans.assert_clean()


@pytest.mark.parametrize(
    "viewport", [SMALL_PHONE, PHONE, DESKTOP], ids=["small-phone", "phone", "desktop"]
)
def test_enrolment_page_fits_the_screen(
    demo: GatewayProcess, browser: Browser, viewport: ViewportSize, tmp_path: Path
) -> None:
    """The enrolment page (with its error) scrolls only vertically, with the QR code, the key (its
    groups of four never split across lines) and the code field inside the window, on a phone
    and on a desktop."""
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        app_sign_in(page, demo.url, *ALICE)
        expect(page).to_have_url(ENROL_URL)
        enter_code(page, wrong_code(enrolment_secret(page)), "Confirm and continue")
        expect(page.get_by_role("alert")).to_be_visible()
        shot = tmp_path / f"enrol-{viewport['width']}x{viewport['height']}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")

        width = viewport["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for locator in (
            page.locator(".qr svg"),
            page.locator("code#secret"),
            page.get_by_label("6-digit code"),
            page.get_by_role("button", name="Confirm and continue"),
            page.get_by_role("alert"),
        ):
            box = locator.bounding_box()
            assert box is not None and box["width"] > 0
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, locator
        key = page.locator("code#secret")
        lines = key.evaluate(RENDERED_LINES)
        groups = (key.text_content() or "").split()
        assert [g for line in lines for g in line.split()] == groups, f"key split: {lines}"
    finally:
        context.close()
