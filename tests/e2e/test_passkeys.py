"""Passkeys in Chromium with its virtual authenticator (CDP `WebAuthn.*`): added at enrolment,
used at the next sign-in, behind `gateway run` in intercept mode in front of the demo's legacy
application, at http://localhost (an IP address cannot be a WebAuthn RP ID)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, CDPSession, Page, expect

from gateway.handlers.shared.passkeys import BAD_NAME, NO_SCRIPT
from tests.e2e.flow import (
    CHALLENGE_URL,
    ENROL_URL,
    app_sign_in,
    axe_report,
    cookies,
    expect_application_home,
)
from tests.support import GatewayProcess, free_port, intercept_app, settings_dict, wait_http

pytestmark = pytest.mark.browser

USER = ("alice@example.com", "alice-password")
POLICY = """
company: Example Company
members:
  domains: [example.com]
methods:
  allowed: [webauthn, totp]
enforce_2fa: true
"""
LEGACY = (
    "import sys\n"
    "from aiohttp import web\n"
    "from gateway.demo.legacy import create_legacy_app\n"
    "web.run_app(create_legacy_app({sys.argv[1]: sys.argv[2]}), host='127.0.0.1',"
    " port=int(sys.argv[3]), print=None)\n"
)


@pytest.fixture
def legacy(tmp_path: Path) -> Iterator[str]:
    """The demo's legacy application on its own, in its own process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "legacy.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", LEGACY, *USER, str(port)], stdout=log, stderr=log
        )
        try:
            wait_http(url + "/login", process=process)
            yield url
        finally:
            process.terminate()
            process.wait(10)


@pytest.fixture
def passkey_gateway(tmp_path: Path, legacy: str) -> Iterator[str]:
    """`gateway run` in front of it, for a company whose first method is passkeys; its URL with
    the host name localhost."""
    settings = settings_dict(
        tmp_path / "run", {"legacy": intercept_app(legacy)}, {"example.yaml": POLICY}
    )
    process = GatewayProcess.run(tmp_path, settings)
    try:
        yield process.url.replace("127.0.0.1", "localhost")
    finally:
        process.stop()


def virtual_authenticator(
    context: BrowserContext, page: Page, cdp: CDPSession | None = None
) -> tuple[CDPSession, str]:
    """A platform authenticator that holds passkeys and says yes at once, as a person would."""
    if cdp is None:
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
    added: dict[str, Any] = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


def submit_without_script(page: Page) -> None:
    """Post the passkey form as a browser without JavaScript would: no answer in it."""
    with page.expect_navigation():
        page.evaluate("document.querySelector('form[data-passkey]').submit()")


def test_passkey_added_at_enrolment_signs_in_next_time(
    passkey_gateway: str, context: BrowserContext, page: Page
) -> None:
    """The enrolment page adds a named passkey with the browser's authenticator and opens the
    application; after signing out, the challenge asks for the passkey and it opens the
    application again. Both pages, and their error states, pass axe-core."""
    base = passkey_gateway
    user, password = USER
    cdp, authenticator = virtual_authenticator(context, page)
    reports: dict[str, str] = {}

    app_sign_in(page, base, user, password)
    expect(page).to_have_url(ENROL_URL)
    expect(page.get_by_role("heading", name="Add a passkey")).to_be_visible()
    expect(page.get_by_role("link", name="Authenticator app")).to_be_visible()
    reports["enrol"] = axe_report(page)
    submit_without_script(page)
    expect(page.get_by_role("alert")).to_contain_text(NO_SCRIPT)
    reports["enrol, no answer"] = axe_report(page)

    page.get_by_label("Name for this passkey").fill("Work laptop")
    page.get_by_role("button", name="Add passkey and continue").click()
    expect_application_home(page, base, user)
    assert "legacy_session" in cookies(context)
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(held) == 1 and held[0]["rpId"] == "localhost"
    first_count = held[0]["signCount"]

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(base + "/login")
    app_sign_in(page, base, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    expect(page.get_by_role("heading", name="Use your passkey")).to_be_visible()
    reports["challenge"] = axe_report(page)
    submit_without_script(page)
    expect(page.get_by_role("alert")).to_contain_text(NO_SCRIPT)
    reports["challenge, no answer"] = axe_report(page)

    page.get_by_role("button", name="Use passkey").click()
    expect_application_home(page, base, user)
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert held[0]["signCount"] > first_count

    failed = {name: report for name, report in reports.items() if report}
    assert not failed, "axe-core violations:\n\n" + "\n\n".join(
        f"== {name}: {report}" for name, report in failed.items()
    )


def test_a_second_browser_cannot_use_a_passkey_it_does_not_hold(
    passkey_gateway: str, context: BrowserContext, page: Page, browser: Any
) -> None:
    """A passkey lives on its authenticator: another browser with an empty authenticator is
    told the request did not work, stays on the challenge, and is not let in."""
    base = passkey_gateway
    virtual_authenticator(context, page)
    app_sign_in(page, base, *USER)
    page.get_by_label("Name for this passkey").fill("Phone")
    page.get_by_role("button", name="Add passkey and continue").click()
    expect_application_home(page, base, USER[0])

    other = browser.new_context()
    try:
        other.set_default_timeout(10_000)
        elsewhere = other.new_page()
        virtual_authenticator(other, elsewhere)
        app_sign_in(elsewhere, base, *USER)
        expect(elsewhere).to_have_url(CHALLENGE_URL)
        elsewhere.get_by_role("button", name="Use passkey").click()
        expect(elsewhere.get_by_role("alert")).to_contain_text("cancelled or ran out of time")
        expect(elsewhere).to_have_url(CHALLENGE_URL)
        assert "legacy_session" not in cookies(other)
    finally:
        other.close()


def test_a_signed_in_user_adds_a_second_passkey_on_the_passkeys_page(
    passkey_gateway: str, context: BrowserContext, page: Page
) -> None:
    """After signing in with a first passkey, /.gateway/passkeys lists it and adds "Second key"
    made by another authenticator (the first one is listed in excludeCredentials, so it would
    refuse); the next sign-in works with the second key alone. The page passes axe-core."""
    base = passkey_gateway
    user, password = USER
    cdp, first = virtual_authenticator(context, page)
    reports: dict[str, str] = {}
    app_sign_in(page, base, user, password)
    page.get_by_label("Name for this passkey").fill("Work laptop")
    page.get_by_role("button", name="Add passkey and continue").click()
    expect_application_home(page, base, user)

    page.goto(base + "/.gateway/passkeys")
    expect(page.get_by_role("heading", name="Your passkeys", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Work laptop")).to_be_visible()
    expect(page.get_by_text("Not used to sign in yet.")).to_be_visible()
    reports["passkeys"] = axe_report(page)

    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first})
    _, second = virtual_authenticator(context, page, cdp)
    page.get_by_label("Name for the new passkey").fill("  work   LAPTOP ")
    page.get_by_role("button", name="Add passkey", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(BAD_NAME)
    expect(page.get_by_label("Name for the new passkey")).to_have_attribute("aria-invalid", "true")
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": second})["credentials"]
    assert held == [], "a refused name must not leave a passkey on the authenticator"
    reports["passkeys, name in use"] = axe_report(page)

    page.get_by_label("Name for the new passkey").fill("Second key")
    page.get_by_role("button", name="Add passkey", exact=True).click()
    expect(page.get_by_role("status")).to_have_text('The passkey "Second key" was added.')
    expect(page.get_by_role("heading", name="Second key")).to_be_visible()
    expect(page.get_by_role("button", name="Remove Work laptop")).to_be_visible()
    expect(page.get_by_role("button", name="Remove Second key")).to_be_visible()
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": second})["credentials"]
    assert len(held) == 1 and held[0]["rpId"] == "localhost"
    reports["passkeys, added"] = axe_report(page)

    page.get_by_role("link", name="Back to the site").click()
    expect_application_home(page, base, user)
    page.get_by_role("button", name="Sign out").click()
    app_sign_in(page, base, user, password)
    expect(page).to_have_url(CHALLENGE_URL)
    page.get_by_role("button", name="Use passkey").click()
    expect_application_home(page, base, user)

    failed = {name: report for name, report in reports.items() if report}
    assert not failed, "axe-core violations:\n\n" + "\n\n".join(
        f"== {name}: {report}" for name, report in failed.items()
    )
