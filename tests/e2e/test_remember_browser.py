"""Remember this browser in Chromium (issue 18, part 2): the demo's legacy application behind
`gateway run`, with the demo's policies, where Acme sets `remember_browser: 30d`. The challenge page offers the box; ticked with the code, that
browser's cookie alone then skips the challenge; the sessions page lists it under "Remembered
browsers" and "Forget" ends that. The challenge page with the box and the sessions page's
remembered section are scanned with axe-core."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from gateway.demo.legacy import create_legacy_app
from gateway.demo.run import ACCOUNTS
from tests.browser import DESKTOP
from tests.e2e.flow import (
    ALICE,
    CHALLENGE_URL,
    app_sign_in,
    axe_report,
    code_now,
    cookies,
    demo_policies,
    enter_code,
    expect_application_home,
    sign_in_and_enrol,
)
from tests.e2e.test_company_policy import Background
from tests.support import GatewayProcess, intercept_app, settings_dict

pytestmark = pytest.mark.browser

COOKIE = "gateway_remember"


def policies() -> dict[str, str]:
    """The demo's policy files, with Acme allowing browsers to be remembered for 30 days."""
    files = demo_policies("acme.yaml", "")
    assert "\nremember_browser: 30d\n" in files["acme.yaml"]  # the demo's own sets it
    return files


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    background = Background()
    try:
        legacy = background.serve(
            create_legacy_app({account.user: account.password for account in ACCOUNTS})
        )
        settings = settings_dict(tmp_path / "run", {"legacy": intercept_app(legacy)}, policies())
        gateway = GatewayProcess.run(tmp_path, settings)
        try:
            yield gateway.url
        finally:
            gateway.stop()
    finally:
        background.close()


def _with_only_the_cookie(browser: Browser, cookie: dict[str, object]) -> BrowserContext:
    fresh = browser.new_context(viewport=DESKTOP)
    fresh.set_default_timeout(10_000)
    fresh.add_cookies([cookie])  # type: ignore[list-item]
    return fresh


def test_a_remembered_browser_skips_the_code_until_forgotten(
    base: str, browser: Browser, page: Page
) -> None:
    user, password = ALICE
    reports: dict[str, str] = {}
    secret, _ = sign_in_and_enrol(page, base, user, password)

    laptop = browser.new_context(viewport=DESKTOP)
    laptop.set_default_timeout(10_000)
    try:
        tab = laptop.new_page()
        app_sign_in(tab, base, user, password)
        expect(tab).to_have_url(CHALLENGE_URL)
        box = tab.get_by_label("Remember this browser for 30 days")
        expect(box).to_be_visible()
        expect(box).not_to_be_checked()
        reports["challenge with the box"] = axe_report(tab)
        box.check()
        enter_code(tab, code_now(secret, steps_ahead=1), "Verify")
        expect_application_home(tab, base, user)
        cookie = cookies(laptop)[COOKIE]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"

        # the cookie alone, in a browser with no session: the password, then straight in
        again = _with_only_the_cookie(browser, cookie)
        try:
            other = again.new_page()
            app_sign_in(other, base, user, password)
            expect_application_home(other, base, user)
        finally:
            again.close()

        tab.goto(base + "/.gateway/account/sessions")
        remembered = tab.get_by_role("region", name="Remembered browsers")
        expect(remembered.get_by_role("listitem")).to_have_count(1)
        expect(remembered).to_contain_text("This browser")
        reports["sessions page, remembered"] = axe_report(tab)
        with tab.expect_navigation():
            remembered.get_by_role("button", name="Forget").click()
        expect(tab.get_by_role("status")).to_contain_text("is no longer remembered.")
        expect(tab.get_by_role("region", name="Remembered browsers")).to_have_count(0)
        reports["sessions page, forgotten"] = axe_report(tab)

        # forgotten: the same cookie now meets the challenge
        after = _with_only_the_cookie(browser, cookie)
        try:
            other = after.new_page()
            app_sign_in(other, base, user, password)
            expect(other).to_have_url(CHALLENGE_URL)
        finally:
            after.close()
    finally:
        laptop.close()
    assert all(report == "" for report in reports.values()), reports
