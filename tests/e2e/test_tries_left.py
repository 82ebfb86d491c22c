"""In Chromium: a wrong authenticator-app code says how many tries this sign-in has left, in the
error that the code field is described by, and the page stays free of axe-core violations."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from gateway.handlers.signin.totp import WRONG_CODE
from tests.e2e.flow import (
    ALICE,
    CHALLENGE_URL,
    CODE_LABEL,
    app_sign_in,
    axe_report,
    enter_code,
    expect_code_refused,
    sign_in_and_enrol,
    wrong_code,
)
from tests.support import GatewayProcess

pytestmark = pytest.mark.browser

AGAIN = "then you sign in again with your password."


def test_a_wrong_app_code_says_how_many_tries_are_left(demo: GatewayProcess, page: Page) -> None:
    """On the challenge, each wrong code's alert (the code field's description) counts the
    tries down, and says what comes after the last."""
    user, password = ALICE
    secret, _ = sign_in_and_enrol(page, demo.url, user, password)
    page.get_by_role("button", name="Sign out").click()
    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(CHALLENGE_URL)

    enter_code(page, wrong_code(secret), "Verify")
    expect_code_refused(page, WRONG_CODE)
    field = page.get_by_label(CODE_LABEL)
    expect(field).to_have_accessible_description(
        f"Error: {WRONG_CODE} You have 4 more tries before this sign-in ends; {AGAIN}"
    )
    assert axe_report(page) == ""

    enter_code(page, wrong_code(secret), "Verify")
    expect(field).to_have_accessible_description(
        f"Error: {WRONG_CODE} You have 3 more tries before this sign-in ends; {AGAIN}"
    )
