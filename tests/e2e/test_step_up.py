"""Step-up per path in Chromium (issue 18, part 3): the demo's legacy application behind
`gateway run`, with a copy of the demo's policies whose access rules add `reauthenticate_after:
1m` on the application's home and sign-out. Once the code is a minute old, a form posted there is
refused (nothing sent on) with a page that says what to do; opening the home asks for the code
and comes back, the application's own session intact. The shortest bound a policy may set is a
minute, and the gateway runs on the real clock, so the test waits for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gateway.demo.legacy import create_legacy_app
from gateway.demo.run import ACCOUNTS
from tests.e2e.flow import (
    CHALLENGE_URL,
    axe_report,
    code_now,
    demo_policies,
    enter_code,
    expect_application_home,
    sign_in_and_enrol,
)
from tests.e2e.test_company_policy import Background
from tests.support import GatewayProcess, intercept_app, settings_dict

pytestmark = pytest.mark.browser

ALICE = ("alice@acme.example", "acme-demo-1")
STEP_UP_RULE = """    - paths: ["/", "/logout"]
      access: two_factor
      reauthenticate_after: 1m
"""
BOUND = 60


def policies() -> dict[str, str]:
    """The demo's policy files, with the step-up rule added to the legacy application's (its
    rules are the file's last)."""
    files = demo_policies("applications.yaml", STEP_UP_RULE)
    assert "  legacy:\n" in files["applications.yaml"]
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


def test_a_step_up_path_asks_for_the_code_after_its_bound_and_comes_back(
    base: str, page: Page
) -> None:
    user, password = ALICE
    secret, _ = sign_in_and_enrol(page, base, user, password)
    verified_at = time.time()
    page.goto(base + "/")
    expect_application_home(page, base, user)  # within the minute: no question

    time.sleep(max(0.0, verified_at + BOUND + 1 - time.time()))

    # A form posted to a step-up path with a code older than the bound: refused, not replayed.
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Please confirm it is you")).to_be_visible()
    expect(page.get_by_text("what you sent was not passed on")).to_be_visible()
    expect(page.get_by_role("link", name="Confirm it is you")).to_be_visible()
    report = axe_report(page)
    assert report == "", report

    # Opening the step-up path: the challenge, then back, signed in to the application still.
    page.goto(base + "/")
    expect(page).to_have_url(CHALLENGE_URL)
    report = axe_report(page)
    assert report == "", report
    enter_code(page, code_now(secret), "Verify")
    expect_application_home(page, base, user)
