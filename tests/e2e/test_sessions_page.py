""" "Where you're signed in" in Chromium, against the demo (issue 18, part 1): one person signed in
from two browsers; the page (linked from "Two-step sign-in") lists both, this one marked; ending
the other signs that browser out of the application; the admin's member page lists them too.
Every state is scanned with axe-core."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser import DESKTOP
from tests.e2e.flow import (
    ALICE,
    CHALLENGE_URL,
    app_sign_in,
    axe_report,
    code_now,
    enter_code,
    expect_application_home,
    sign_in_and_enrol,
)
from tests.e2e.test_codes import no_violations
from tests.support import GatewayProcess

pytestmark = pytest.mark.browser

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def test_two_browsers_listed_this_one_marked_the_other_ended(
    demo: GatewayProcess, browser: Browser, context: BrowserContext, page: Page
) -> None:
    user, password = ALICE
    reports: dict[str, str] = {}
    secret, _ = sign_in_and_enrol(page, demo.url, user, password)
    other_context = browser.new_context(viewport=DESKTOP, user_agent=FIREFOX)
    try:
        other = other_context.new_page()
        app_sign_in(other, demo.url, user, password)
        expect(other).to_have_url(CHALLENGE_URL)
        enter_code(other, code_now(secret, steps_ahead=1), "Verify")
        expect_application_home(other, demo.url, user)

        page.goto(demo.url + "/.gateway/account")
        page.get_by_role("link", name="Where you're signed in").click()
        expect(page.get_by_role("heading", name="Where you're signed in", level=1)).to_be_visible()
        sessions = page.get_by_role("region", name="Signed in now").get_by_role("listitem")
        expect(sessions).to_have_count(2)
        expect(sessions.first).to_contain_text("This browser")
        expect(sessions.first).to_contain_text("Chrome")
        expect(sessions.first).to_contain_text("Last seen just now")
        expect(sessions.nth(1)).to_contain_text("Firefox 133 on Windows 10")
        expect(sessions.nth(1)).not_to_contain_text("This browser")
        expect(sessions.nth(1)).to_contain_text("127.0.0.1")
        expect(sessions.first.get_by_role("button")).to_have_count(0)
        reports["two sessions"] = axe_report(page)

        # Alice is Acme's admin: her member page lists the same two, hers marked
        page.goto(demo.url + "/.gateway/admin/acme/members/" + user)
        listed = page.get_by_role("region", name="Where you are signed in")
        expect(listed.get_by_role("listitem")).to_have_count(2)
        expect(listed).to_contain_text("Your session")
        expect(listed).to_contain_text("Firefox 133 on Windows 10")
        reports["admin member page"] = axe_report(page)
        page.goto(demo.url + "/.gateway/account/sessions")

        with page.expect_navigation():
            sessions.nth(1).get_by_role("button", name="End this session").click()
        expect(page.get_by_role("status")).to_contain_text(
            "The session in Firefox 133 on Windows 10 was ended."
        )
        expect(sessions).to_have_count(1)
        expect(page.get_by_text("You are not signed in anywhere else.")).to_be_visible()
        reports["one session"] = axe_report(page)

        other.goto(demo.url + "/")
        expect(other.get_by_role("heading", name=f"Welcome, {user}")).to_have_count(0)
        # the application's cookie alone is refused: the gateway clears it and says so
        expect(other.get_by_role("heading", name="Please sign in again")).to_be_visible()
        other.get_by_role("link", name="Go to the start page").click()
        expect(other.get_by_role("heading", name="Sign in to Legacy Billing")).to_be_visible()
        page.goto(demo.url + "/")
        expect_application_home(page, demo.url, user)
    finally:
        other_context.close()
    no_violations(reports)
