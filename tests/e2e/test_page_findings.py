"""Issue 17's findings 4, 5, 6 and 10 in Chromium, against the demo (the others have their own
files: 1 test_try_another_way, 2 and 7 test_own_methods, 3 and 8 test_form_details, 6's tries
left test_tries_left, 9 test_recovery_page). Each failed before its fix.

- 4: an admin's reset takes a ticked box, and resetting oneself warns first and ends on the
  start page, not "Access denied".
- 5: an error page in the middle of Acme's sign-in keeps Acme's brand (and colour).
- 6: a wait page moves on by itself when the wait is over, without JavaScript.
- 10: the admin's table names methods in words.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.flow import (
    CHALLENGE_URL,
    app_sign_in,
    axe_report,
    enter_code,
    sign_in_and_enrol,
    wrong_code,
)
from tests.support import GatewayProcess

pytestmark = pytest.mark.browser

ALICE = ("alice@acme.example", "acme-demo-1")
MEMBERS = "/.gateway/admin/acme/"


def test_a_reset_needs_its_box_and_resetting_oneself_warns_then_starts_again(
    demo: GatewayProcess, page: Page
) -> None:
    sign_in_and_enrol(page, demo.url, *ALICE)
    page.goto(f"{demo.url}{MEMBERS}members/{ALICE[0]}")
    expect(page.get_by_text("This is your own account.")).to_be_visible()
    box = page.get_by_label("Yes, remove every way I have set up")
    expect(box).not_to_be_checked()
    page.get_by_role("button", name="Reset two-step sign-in").click()  # the box is required
    expect(page).to_have_url(f"{demo.url}{MEMBERS}members/{ALICE[0]}")
    expect(page.get_by_role("status")).to_have_count(0)
    assert axe_report(page) == ""
    box.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Reset two-step sign-in").click()
    expect(page.get_by_role("heading", name="Access denied")).to_have_count(0)
    expect(page.get_by_role("heading", name="Please sign in again")).to_be_visible()
    page.get_by_role("link", name="Go to the start page").click()
    app_sign_in(page, demo.url, *ALICE)  # and set it up again
    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()


def test_an_error_page_mid_sign_in_keeps_the_companys_brand(
    demo: GatewayProcess, page: Page
) -> None:
    app_sign_in(page, demo.url, *ALICE)
    page.goto(demo.url + "/.gateway/enrol?method=carrier-pigeon")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_text("That sign-in method is not available to you.")).to_be_visible()
    brand = page.locator("header .brand")
    expect(brand).to_have_text("Acme")
    expect(page.get_by_text("Sign-in gateway")).to_have_count(0)
    colour = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand')")
    assert colour.strip() != "#1f4e8c"  # Acme's own colour, not the gateway's blue
    assert axe_report(page) == ""


def test_a_wait_page_moves_on_by_itself_without_javascript(
    demo: GatewayProcess, browser: Browser
) -> None:
    """Five wrong codes end a sign-in; the password again at once (or the wrong answers after
    it) meets the growing delay between wrong answers: "Please wait a moment", and when the wait
    is over the page goes back to the step by itself, in a browser with scripting off."""
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        secret, _ = sign_in_and_enrol(page, demo.url, *ALICE)
        context.clear_cookies()
        app_sign_in(page, demo.url, *ALICE)
        for _ in range(5):
            enter_code(page, wrong_code(secret), "Verify")
        app_sign_in(page, demo.url, *ALICE)
        waiting = page.get_by_role("heading", name="Please wait a moment")
        for _ in range(3):  # each counted answer makes the next wait longer (2 s, 4 s, 8 s)
            if waiting.count() or not CHALLENGE_URL.search(page.url):
                break
            enter_code(page, wrong_code(secret), "Verify")
        expect(waiting).to_be_visible()
        refresh = page.locator('meta[http-equiv="refresh"]').get_attribute("content") or ""
        seconds, _, back = refresh.partition(";url=")
        assert 0 < int(seconds) <= 60 and back.startswith("/"), refresh
        # no click: the page moves on by itself once the wait is over, back to the step it
        # refused (the password, or the code)
        expect(waiting).to_have_count(0, timeout=70_000)
        assert page.url == demo.url + back
        step = page.get_by_role("button", name="Sign in").or_(page.get_by_label("6-digit code"))
        expect(step).to_be_visible()
    finally:
        context.close()


def test_the_admin_table_names_methods_in_words(demo: GatewayProcess, page: Page) -> None:
    sign_in_and_enrol(page, demo.url, *ALICE)
    page.goto(demo.url + MEMBERS)
    row = page.get_by_role("row").filter(has_text=ALICE[0])
    expect(row).to_contain_text(re.compile("authenticator app", re.IGNORECASE))
    expect(row).not_to_contain_text("totp")
