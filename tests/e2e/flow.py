"""Steps a person takes in the browser, shared by the e2e tests."""

from __future__ import annotations

import re
import time

import pyotp
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

ALICE = ("alice@acme.example", "acme-demo-1")
CODE_LABEL = "6-digit code"
ENROL_URL = re.compile(r"/\.gateway/enrol(\?|$)")
CHALLENGE_URL = re.compile(r"/\.gateway/challenge(\?|$)")
RECOVERY_URL = re.compile(r"/\.gateway/recovery(\?|$)")


def app_sign_in(page: Page, base: str, user: str, password: str) -> None:
    """Open the application, land on its own login form, and submit the password."""
    page.goto(base + "/")
    expect(page).to_have_url(base + "/login")
    expect(page.get_by_role("heading", name="Sign in to Legacy Billing")).to_be_visible()
    page.get_by_label("Email").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def cookies(context: BrowserContext) -> dict[str, dict[str, object]]:
    """The context's cookies by name."""
    return {str(c["name"]): dict(c) for c in context.cookies()}


def code_now(secret: str, steps_ahead: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead))


def wrong_code(secret: str) -> str:
    """A code that is right for no step the gateway could accept now (nor a little later)."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + 30 * k) for k in range(-2, 4)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in near)


def enter_code(page: Page, code: str, button: str) -> None:
    """Type a code and submit it; returns once the answer page has loaded."""
    page.get_by_label(CODE_LABEL).fill(code)
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def expect_code_refused(page: Page, message: str) -> None:
    """The page says why the code was refused, as an alert tied to the code field."""
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(message)
    expect(page.get_by_label(CODE_LABEL)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label(CODE_LABEL)).to_have_attribute("aria-describedby", "code-error")


def enrolment_secret(page: Page) -> str:
    secret = page.locator("code#secret").get_attribute("data-secret")
    assert secret, "the enrolment page shows no secret"
    return secret


def enrol(page: Page) -> tuple[str, str]:
    """On the enrolment page: add the key to an 'authenticator' and confirm its current code.
    Returns the secret and the code used (a code is accepted once)."""
    expect(page).to_have_url(ENROL_URL)
    secret = enrolment_secret(page)
    code = code_now(secret)
    enter_code(page, code, "Confirm and continue")
    return secret, code


def expect_application_home(page: Page, base: str, user: str) -> None:
    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("heading", name=f"Welcome, {user}")).to_be_visible()


def past_recovery_codes(page: Page) -> None:
    """After a first enrolment where the company offers recovery codes (every company of the
    demo does): the codes, shown once, then on with the page's "continue" button."""
    expect(page).to_have_url(RECOVERY_URL)
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    with page.expect_navigation():
        page.locator("form:has(input[name=continue]) button[type=submit]").click()


def sign_in_and_enrol(page: Page, base: str, user: str, password: str) -> tuple[str, str]:
    app_sign_in(page, base, user, password)
    secret, code = enrol(page)
    if RECOVERY_URL.search(page.url):
        past_recovery_codes(page)
    expect_application_home(page, base, user)
    return secret, code


def axe_report(page: Page) -> str:
    """axe-core's violations on the current page, as text ('' when there are none)."""
    results = Axe().run(page)
    if results.violations_count == 0:
        return ""
    return f"{page.url}\n{results.generate_snapshot()}\n{results.generate_report()}"
