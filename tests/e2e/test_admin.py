"""The admin pages in Chromium: an admin sees only their company, resets a member who must then
enrol again, and turns enforcement on for good; a member who is not an admin gets 403. Every
admin page is scanned with axe-core, and the actions are found in the gateway's audit log.

    browser ──► `gateway run` (subprocess) ──► legacy application (thread in this process)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from gateway.demo.legacy import create_legacy_app
from tests.browser import DESKTOP
from tests.e2e.flow import (
    ENROL_URL,
    app_sign_in,
    axe_report,
    expect_application_home,
    sign_in_and_enrol,
)
from tests.e2e.test_company_policy import Background
from tests.support import GatewayProcess, intercept_app, settings_dict

pytestmark = pytest.mark.browser

ALICE = ("alice@acme.example", "alice-pw")  # Acme's admin
CAROL = ("carol@acme.example", "carol-pw")  # an Acme member
BOB = ("bob@globex.example", "bob-pw")  # another company
POLICIES = {
    "acme.yaml": """
company: Acme Corporation
members:
  domains: [acme.example]
account_type: partner
admins: [alice@acme.example]
enforce_2fa: false
branding:
  name: Acme
  colour: "#8c1f1f"
""",
    "globex.yaml": """
company: Globex
members:
  domains: [globex.example]
account_type: partner
enforce_2fa: false
""",
}
MEMBERS = "/.gateway/admin/acme/"


@dataclass
class Deployment:
    url: str
    gateway: GatewayProcess

    def audit(self) -> list[dict[str, Any]]:
        """The audit events the gateway has written so far (JSON lines of its log)."""
        events = []
        for line in self.gateway.log.read_text(encoding="utf-8").splitlines():
            start = line.find('{"')
            if start >= 0 and '"event":' in line:
                try:
                    events.append(json.loads(line[start:]))
                except ValueError:
                    continue
        return events


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    background = Background()
    try:
        legacy = background.serve(create_legacy_app(dict([ALICE, CAROL, BOB])))
        settings = settings_dict(tmp_path / "run", {"legacy": intercept_app(legacy)}, POLICIES)
        gateway = GatewayProcess.run(tmp_path, settings)
        try:
            yield Deployment(gateway.url, gateway)
        finally:
            gateway.stop()
    finally:
        background.close()


def new_page(browser: Browser) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(10_000)
    return context, context.new_page()


def test_admin_resets_a_member_and_turns_enforcement_on(
    deployment: Deployment, browser: Browser, page: Page
) -> None:
    """Alice (admin) sees Acme's members but not Globex's, resets Carol, who must then enrol
    again, and enables 2FA for all users, which then cannot be turned off."""
    base = deployment.url
    carol_context, carol = new_page(browser)
    bob_context, bob = new_page(browser)
    try:
        sign_in_and_enrol(carol, base, *CAROL)
        sign_in_and_enrol(bob, base, *BOB)
        sign_in_and_enrol(page, base, *ALICE)
        reports: dict[str, str] = {}

        page.goto(base + "/.gateway/admin/")
        expect(page).to_have_url(base + MEMBERS)
        expect(page.get_by_role("heading", name="Members of Acme Corporation")).to_be_visible()
        table = page.get_by_role("table")
        expect(table.get_by_role("link", name=ALICE[0])).to_be_visible()
        expect(table.get_by_role("link", name=CAROL[0])).to_be_visible()
        expect(table).not_to_contain_text(BOB[0])
        reports["members"] = axe_report(page)

        page.get_by_label("Address or name").fill("carol")
        with page.expect_navigation():
            page.get_by_role("button", name="Search").click()
        expect(table.get_by_role("link")).to_have_count(1)
        table.get_by_role("link", name=CAROL[0]).click()
        expect(page.get_by_role("heading", name=CAROL[0])).to_be_visible()
        reports["member"] = axe_report(page)
        page.get_by_label(f"Yes, remove every way {CAROL[0]} has set up").check()
        page.get_by_role("button", name="Reset two-step sign-in").click()
        expect(page.get_by_role("status")).to_contain_text("was reset")
        reports["member after reset"] = axe_report(page)

        carol.goto(base + "/")  # her session has ended: the application's cookie is refused
        expect(carol.get_by_role("heading", name="Please sign in again")).to_be_visible()
        app_sign_in(carol, base, *CAROL)
        expect(carol).to_have_url(ENROL_URL)  # and must enrol again

        page.get_by_role("link", name="All members of Acme Corporation").click()
        page.get_by_role("link", name="Enable 2FA for all users").click()
        expect(page.get_by_role("heading", name="Enable 2FA for all users")).to_be_visible()
        reports["enforce"] = axe_report(page)
        page.get_by_label("I understand that this cannot be undone").check()
        page.get_by_role("button", name="Enable 2FA for all users").click()
        expect(page).to_have_url(base + MEMBERS + "?done=enforced")
        expect(page.get_by_role("status")).to_contain_text("now required for every member")
        expect(page.get_by_text("This cannot be turned off.")).to_be_visible()
        expect(page.get_by_role("link", name="Enable 2FA for all users")).to_have_count(0)
        reports["members, enforced"] = axe_report(page)
        page.goto(base + MEMBERS + "enforce")
        expect(page.get_by_text("It cannot be turned off.")).to_be_visible()
        expect(page.get_by_role("button")).to_have_count(0)

        page.goto(base + "/.gateway/admin/reauth?rd=%2F.gateway%2Fadmin%2F")
        reports["re-authenticate"] = axe_report(page)

        failed = {name: report for name, report in reports.items() if report}
        assert not failed, "axe-core violations:\n\n" + "\n\n".join(
            f"== {name}: {report}" for name, report in failed.items()
        )
        events = deployment.audit()
        [reset] = [e for e in events if e["event"] == "admin_reset"]
        assert (reset["admin"], reset["member"], reset["company"]) == (ALICE[0], CAROL[0], "acme")
        [enforced] = [e for e in events if e["event"] == "admin_enforce"]
        assert enforced["admin"] == ALICE[0] and enforced["new"] is True
    finally:
        carol_context.close()
        bob_context.close()


def test_a_member_who_is_not_an_admin_gets_403(deployment: Deployment, page: Page) -> None:
    """Carol is signed in with her second factor, but no admin: the admin pages answer 403."""
    sign_in_and_enrol(page, deployment.url, *CAROL)
    for path in ("/.gateway/admin/", MEMBERS):
        response = page.goto(deployment.url + path)
        assert response is not None and response.status == 403
        expect(page.get_by_role("heading", name="Access denied")).to_be_visible()
    page.goto(deployment.url + "/")
    expect_application_home(page, deployment.url, CAROL[0])
