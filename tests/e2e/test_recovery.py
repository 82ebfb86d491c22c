"""Recovery codes in Chromium: shown once after the first enrolment, then a sign-in with one
through "Try another way"; every recovery page scanned with axe-core.

    browser ──► `gateway run` (subprocess) ──► legacy application (thread)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from gateway.demo.legacy import create_legacy_app
from gateway.handlers.signin.recovery import WRONG_CODE
from tests.e2e.flow import (
    ALICE,
    CHALLENGE_URL,
    app_sign_in,
    axe_report,
    enrol,
    expect_application_home,
)
from tests.e2e.test_company_policy import Background
from tests.support import GatewayProcess, intercept_app, settings_dict

pytestmark = pytest.mark.browser

POLICIES = {
    "acme.yaml": """
company: Acme Corporation
members:
  domains: [acme.example]
account_type: partner
methods:
  allowed: [totp, recovery]
  default: totp
enforce_2fa: true
branding:
  name: Acme
  colour: "#8c1f1f"
"""
}
RECOVERY_URL = re.compile(r"/\.gateway/recovery\?rd=")
USED_URL = re.compile(r"/\.gateway/recovery/used\?rd=")
CODE_LABEL = "Recovery code"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """The legacy application with `gateway run` in front, for a company that allows codes."""
    background = Background()
    try:
        legacy = background.serve(create_legacy_app(dict([ALICE])))
        settings = settings_dict(tmp_path / "run", {"legacy": intercept_app(legacy)}, POLICIES)
        process = GatewayProcess.run(tmp_path, settings)
        try:
            yield process.url
        finally:
            process.stop()
    finally:
        background.close()


def enter_recovery_code(page: Page, code: str) -> None:
    page.get_by_label(CODE_LABEL).fill(code)
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()


def test_recovery_code_sign_in(gateway: str, context: BrowserContext, page: Page) -> None:
    """After enrolling an app, ten codes are shown once; later, with "Try another way", one code
    signs in and the page says 9 remain; the same code again is refused. No axe violations."""
    user, password = ALICE
    reports: dict[str, str] = {}

    app_sign_in(page, gateway, user, password)
    enrol(page)
    expect(page).to_have_url(RECOVERY_URL)
    expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    items = page.get_by_role("list", name="Your 10 recovery codes").get_by_role("listitem")
    expect(items).to_have_count(10)
    codes = [text.strip() for text in items.all_inner_texts()]
    assert all(re.fullmatch(r"[0-9a-z]{5}-[0-9a-z]{5}", code) for code in codes), codes
    reports["new codes"] = axe_report(page)
    page.get_by_role("button", name="I have saved these codes — continue").click()
    expect_application_home(page, gateway, user)

    page.goto(gateway + "/.gateway/recovery?rd=%2F")
    expect(page.get_by_text("10 codes remain.")).to_be_visible()
    expect(page.get_by_role("listitem").filter(has_text=codes[0])).to_have_count(0)
    expect(page.get_by_role("button", name="Make new codes")).to_be_visible()
    reports["codes remaining"] = axe_report(page)

    context.clear_cookies()  # a new browser
    app_sign_in(page, gateway, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    page.get_by_role("region", name="Try another way").get_by_role(
        "link", name="A recovery code"
    ).click()
    expect(page.get_by_role("heading", name="Enter a recovery code")).to_be_visible()
    reports["recovery challenge"] = axe_report(page)
    enter_recovery_code(page, "abcde-12345")
    expect(page.get_by_role("alert")).to_contain_text(WRONG_CODE)
    expect(page.get_by_label(CODE_LABEL)).to_have_attribute("aria-invalid", "true")
    reports["recovery challenge, wrong code"] = axe_report(page)

    enter_recovery_code(page, codes[0].upper())
    expect(page).to_have_url(USED_URL)
    expect(page.get_by_text("You signed in with a recovery code. 9 codes remain.")).to_be_visible()
    reports["signed in with a code"] = axe_report(page)
    page.get_by_role("button", name="Continue").click()
    expect_application_home(page, gateway, user)

    context.clear_cookies()
    app_sign_in(page, gateway, user, password)
    page.goto(gateway + "/.gateway/challenge?method=recovery&rd=%2F")
    enter_recovery_code(page, codes[0])
    expect(page.get_by_role("alert")).to_contain_text(WRONG_CODE)

    failed = {name: report for name, report in reports.items() if report}
    assert not failed, "axe-core violations:\n\n" + "\n\n".join(
        f"== {name}: {report}" for name, report in failed.items()
    )
