"""Step-up per path in Chromium (issue 18, part 3): the demo's legacy application behind
`gateway run`, with a copy of the demo's policies whose access rules add `reauthenticate_after:
1m` on the application's home and sign-out. Once the code is a minute old, a form posted there is
refused (nothing sent on) with a page that says what to do; opening the home asks for the code
and comes back, the application's own session intact. The shortest bound a policy may set is a
minute and the gateway runs on the real clock: rather than wait for it, the test moves the
session's last second factor a minute into the past in the gateway's own store (its SQLite file
and encryption key, the test's), as `gateway users sessions` opens it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from gateway.clock import system_clock
from gateway.crypto import Cipher
from gateway.demo.legacy import create_legacy_app
from gateway.demo.run import ACCOUNTS
from gateway.operator import opened_store
from gateway.sessions import RECHECK_AFTER, SessionManager
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


def age_second_factor(settings: dict[str, Any], user: str, seconds: float) -> list[float]:
    """Move the last second factor of each of the user's live sessions `seconds` into the past,
    in the store the gateway reads; returns the new times, read back from the store."""
    key = Path(settings["secrets"]["encryption_key"]["file"]).read_text().strip()

    async def age() -> list[float]:
        async with opened_store(settings["store"]) as store:
            sessions = SessionManager(store, Cipher(key), system_clock, handle_key=key)
            for found in await sessions.active(user):
                assert found.session.verified_at is not None
                found.session.verified_at -= seconds
                assert await sessions.save(found.session)
            return [found.session.verified_at or 0.0 for found in await sessions.active(user)]

    # a thread of its own: Playwright's sync API keeps an event loop on this one
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, age()).result()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The gateway's URL and its settings (its store and keys)."""
    background = Background()
    try:
        legacy = background.serve(
            create_legacy_app({account.user: account.password for account in ACCOUNTS})
        )
        settings = settings_dict(tmp_path / "run", {"legacy": intercept_app(legacy)}, policies())
        gateway = GatewayProcess.run(tmp_path, settings)
        try:
            yield gateway.url, settings
        finally:
            gateway.stop()
    finally:
        background.close()


def test_a_step_up_path_asks_for_the_code_after_its_bound_and_comes_back(
    served: tuple[str, dict[str, Any]], page: Page
) -> None:
    base, settings = served
    user, password = ALICE
    secret, _ = sign_in_and_enrol(page, base, user, password)
    page.goto(base + "/")
    expect_application_home(page, base, user)  # within the minute: no question

    aged = age_second_factor(settings, user, BOUND + 1)
    assert len(aged) == 1 and all(at < time.time() - BOUND for at in aged), aged
    # the forwarding path may answer from the session it read less than RECHECK_AFTER ago
    time.sleep(RECHECK_AFTER + 0.5)

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
    # the next step's code: the one enrolment used may be the current one still, and is spent
    enter_code(page, code_now(secret, steps_ahead=1), "Verify")
    expect_application_home(page, base, user)
