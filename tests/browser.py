"""Debian's Chromium, headless, with the project's flags, driven by Playwright's sync API: the
one launcher of the browser tests (tests/e2e and tests/compat).

The sync API runs its own event loop, which must not meet pytest-asyncio's: only plain
(non-async) tests use these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

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


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; skips the test when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run this")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def chromium_page(viewport: ViewportSize | None = None, timeout: float = 15_000) -> Iterator[Page]:
    """A page of chromium() in a fresh profile (Playwright's default window unless `viewport`),
    waiting up to `timeout` ms for what it is told to wait for."""
    with chromium() as browser:
        context = browser.new_context(viewport=viewport) if viewport else browser.new_context()
        context.set_default_timeout(timeout)
        yield context.new_page()
