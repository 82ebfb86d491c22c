"""A person's own "Two-step sign-in" page in Chromium, against the demo (issue 17, findings 2 and
7): a person who put enrolment off sets it up early from the page (the enrolment page used to
send them back to the application, and the sign-out page linked recovery codes that were "Page
not found" for them); then adds a backup method (only passkeys could be added before), makes
it the one asked for first, and removes the first one; the last one left cannot be removed.
Every page is scanned with axe-core, at a phone's width."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.flow import (
    CHALLENGE_URL,
    app_sign_in,
    axe_report,
    code_now,
    enrolment_secret,
    enter_code,
)
from tests.e2e.test_codes import BOB, last_code, no_violations
from tests.support import GatewayProcess

pytestmark = pytest.mark.browser


def test_put_off_then_set_up_add_a_backup_and_remove_the_first(
    demo: GatewayProcess, context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    user, password = BOB
    reports: dict[str, str] = {}
    app_sign_in(page, demo.url, user, password)
    with page.expect_navigation():
        page.get_by_role("button", name="Remind me in 48 hours").click()
    expect(page).to_have_url(demo.url + "/")

    page.goto(demo.url + "/.gateway/logout")
    expect(page.get_by_role("link", name="Your recovery codes")).to_have_count(0)
    page.get_by_role("link", name="Your two-step sign-in").click()
    expect(page.get_by_role("heading", name="Two-step sign-in", level=1)).to_be_visible()
    reports["not set up"] = axe_report(page)
    for link in page.get_by_role("link").all():  # every link leads somewhere that works
        href = link.get_attribute("href") or ""
        if href.startswith("/") and not href.startswith("/.gateway/language"):  # sets the language
            assert page.request.get(demo.url + href).status < 400, href
    with page.expect_navigation():
        page.get_by_role("button", name="Set up two-step sign-in now").click()
    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    secret = enrolment_secret(page)
    enter_code(page, code_now(secret), "Confirm and continue")
    if "/.gateway/recovery" in page.url:  # the demo's companies may offer recovery codes
        page.get_by_role("button", name="Continue").or_(
            page.get_by_role("link", name="Continue")
        ).first.click()
    expect(page.get_by_role("heading", name="Two-step sign-in", level=1)).to_be_visible()
    mine = page.get_by_role("region", name="Your methods")
    expect(mine).to_contain_text("Authenticator app")
    expect(mine).to_contain_text("Your only way to sign in")
    expect(mine).to_contain_text("Added just now.")  # in words; the local time as its title
    expect(mine.locator("time").first).to_have_attribute("title", re.compile(r"\d{4}"))
    reports["one method"] = axe_report(page)

    page.get_by_role("region", name="Add a backup method").get_by_role("link", name="Email").click()
    expect(page.get_by_role("heading", name="Email me a code")).to_be_visible()
    expect(page.get_by_role("button", name="Remind me in 48 hours")).to_have_count(0)
    with page.expect_navigation():
        page.get_by_role("button", name="Email me a code").click()
    enter_code(page, last_code(tmp_path, "email", user), "Confirm and continue")
    expect(page.get_by_role("heading", name="Two-step sign-in", level=1)).to_be_visible()
    expect(mine).to_contain_text("Email")
    expect(mine).to_contain_text("b•••b@globex.example")
    reports["two methods"] = axe_report(page)

    with page.expect_navigation():
        page.get_by_role("button", name="Ask for this first (Email)").click()
    expect(page.get_by_role("status")).to_contain_text("Email is now asked for first")
    with page.expect_navigation():
        page.get_by_role("button", name="Remove Authenticator app").click()
    expect(page.get_by_role("status")).to_contain_text("Authenticator app was removed.")
    expect(mine).not_to_contain_text("Authenticator app")
    expect(mine).to_contain_text("Your only way to sign in")
    reports["removed"] = axe_report(page)

    # the next sign-in asks for the email code first
    context.clear_cookies()
    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    expect(page.get_by_role("button", name="Email me a code")).to_be_visible()
    no_violations(reports)
