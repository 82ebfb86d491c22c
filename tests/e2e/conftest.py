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
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from tests.support import GatewayProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SMALL_PHONE: ViewportSize = {"width": 360, "height": 740}
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; the tests skip when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run these")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


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
