"""Browser fixtures: Debian's Chromium driven by Playwright (sync API), and the real demo.

The browser is started once for the e2e package; every test gets its own demo process (it starts
in well under a second) and its own browser context, so tests do not share sign-ins or cookies.
The sync API is used in plain (non-async) tests: it runs its own event loop, which must not meet
pytest-asyncio's, so no test in this package is async.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser import PHONE, chromium
from tests.support import GatewayProcess


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (tests/browser.py); the tests skip when it is missing."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[GatewayProcess]:
    """`gateway demo` in its own process: the legacy application behind the gateway."""
    process = GatewayProcess.demo(tmp_path)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) with a phone-sized window."""
    ctx = browser.new_context(viewport=PHONE)
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
