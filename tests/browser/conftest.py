"""Real headless Chromium (Debian's), driven by Playwright; no browser is downloaded.

Playwright's sync API keeps an event loop running in this thread while it is open, which
would break every asyncio test after it: so it lives for one module at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright

from tests.stack import Stack

CHROMIUM = "/usr/bin/chromium"
# CI machines are shared and slow: waiting longer costs nothing when the page is right.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser, stack: Stack) -> Iterator[BrowserContext]:
    # The copy button writes the clipboard, which the test then reads back.
    made = browser.new_context(
        base_url=stack.api_url, permissions=["clipboard-read", "clipboard-write"]
    )
    made.set_default_timeout(15_000)
    yield made
    made.close()
