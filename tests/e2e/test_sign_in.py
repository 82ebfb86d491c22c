"""The demo in Chromium: the application's own login form, the gateway's second factor, and the
application's cookie held back until the code is right."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from gateway.handlers.signin.totp import USED_CODE, WRONG_CODE
from tests.e2e.flow import (
    ALICE,
    CHALLENGE_URL,
    ENROL_URL,
    app_sign_in,
    code_now,
    cookies,
    enrolment_secret,
    enter_code,
    expect_application_home,
    expect_code_refused,
    past_recovery_codes,
    sign_in_and_enrol,
    wrong_code,
)
from tests.support import GatewayProcess

pytestmark = pytest.mark.browser


def test_first_sign_in_enrols_and_releases_the_application_cookie(
    demo: GatewayProcess, context: BrowserContext, page: Page
) -> None:
    """The password on the application's form leads to enrolment with the application's cookie
    held back; a wrong code says so, the right one opens the application and releases it."""
    user, password = ALICE
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url == demo.url + "/login"
    ) as login:
        app_sign_in(page, demo.url, user, password)
    assert login.value.status == 303
    assert not any(v.startswith("legacy_session=") for v in login.value.header_values("set-cookie"))

    expect(page).to_have_url(ENROL_URL)
    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    expect(page.get_by_text(user)).to_be_visible()
    held = cookies(context)
    assert "legacy_session" not in held, "the application's cookie reached the browser early"
    assert "gateway_session" in held

    secret = enrolment_secret(page)
    enter_code(page, wrong_code(secret), "Confirm and continue")
    expect(page).to_have_url(ENROL_URL)
    expect_code_refused(page, WRONG_CODE)
    assert enrolment_secret(page) == secret, "a wrong code must not change the key to add"
    assert "legacy_session" not in cookies(context)

    enter_code(page, code_now(secret), "Confirm and continue")
    past_recovery_codes(page)  # Acme offers recovery codes: shown once, after the enrolment
    expect_application_home(page, demo.url, user)
    released = cookies(context)
    assert "legacy_session" in released
    for name in ("gateway_session", "legacy_session"):
        assert released[name]["httpOnly"] is True, name
        assert released[name]["sameSite"] == "Lax", name
    assert released["gateway_session"]["value"] != held["gateway_session"]["value"], (
        "the verified session must get a new id"
    )


def test_second_sign_in_asks_for_the_code_again(
    demo: GatewayProcess, context: BrowserContext, page: Page
) -> None:
    """After the application's Sign out, signing in again leads to the challenge (not enrolment),
    where a wrong or replayed code says so and the next code gets in."""
    user, password = ALICE
    secret, used = sign_in_and_enrol(page, demo.url, user, password)
    verified = cookies(context)["gateway_session"]["value"]

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(demo.url + "/login")
    after = cookies(context)
    assert "legacy_session" not in after
    # The application's login form sets a cookie again, which the gateway holds for a new
    # anonymous session: whatever gateway cookie the browser has now is not the verified one.
    assert after.get("gateway_session", {}).get("value") != verified

    app_sign_in(page, demo.url, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    assert "legacy_session" not in cookies(context)

    enter_code(page, wrong_code(secret), "Verify")
    expect(page).to_have_url(CHALLENGE_URL)
    expect_code_refused(page, WRONG_CODE)

    enter_code(page, used, "Verify")  # the enrolment code, still inside the accepted window
    expect_code_refused(page, USED_CODE)
    assert "legacy_session" not in cookies(context)

    # The next 30-second step's code: inside the window and never used.
    enter_code(page, code_now(secret, steps_ahead=1), "Verify")
    expect_application_home(page, demo.url, user)
    assert "legacy_session" in cookies(context)


def test_application_sign_out_ends_the_gateway_session_on_the_server(
    demo: GatewayProcess, browser: Browser, context: BrowserContext, page: Page
) -> None:
    """After the application's Sign out, a copy of the old gateway session cookie is worthless."""
    sign_in_and_enrol(page, demo.url, *ALICE)
    copied = str(cookies(context)["gateway_session"]["value"])
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(demo.url + "/login")

    other = browser.new_context()
    try:
        other.add_cookies([{"name": "gateway_session", "value": copied, "url": demo.url}])
        copy = other.new_page()
        copy.goto(demo.url + "/.gateway/logout")
        assert "You are not signed in." in copy.locator("main").inner_text(), (
            "the gateway session survived the application's sign-out on the server"
        )
    finally:
        other.close()


def test_stolen_application_cookie_alone_is_refused(
    demo: GatewayProcess, browser: Browser, context: BrowserContext, page: Page
) -> None:
    """Another browser holding only the application's session cookie gets the gateway's 'Please
    sign in again' page, not the application, and the owner's browser is not disturbed."""
    user, password = ALICE
    sign_in_and_enrol(page, demo.url, user, password)
    stolen = str(cookies(context)["legacy_session"]["value"])

    thief = browser.new_context()
    try:
        thief.add_cookies([{"name": "legacy_session", "value": stolen, "url": demo.url}])
        thief_page = thief.new_page()
        response = thief_page.goto(demo.url + "/")
        assert response is not None and response.status == 403
        expect(thief_page.get_by_role("heading", name="Please sign in again")).to_be_visible()
        expect(thief_page.get_by_text("Welcome")).to_have_count(0)
        assert "legacy_session" not in cookies(thief), "the refused cookie should be cleared"
    finally:
        thief.close()

    page.reload()
    expect_application_home(page, demo.url, user)
