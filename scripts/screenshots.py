"""`make screenshots`: the main pages in English and Arabic, desktop and phone, as PNGs.

Brings up the whole system (simulator, api, dispatcher) on a throwaway SQLite
database and Redis, registers a user through the pages, makes a few API calls so the
dashboard has something to show, and saves each page into `screenshots/` (git-ignored).
"""

from __future__ import annotations

import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import openai
from playwright.sync_api import Page, sync_playwright

from tests.services import start_redis
from tests.stack import Stack

OUT = Path("screenshots")
PUBLIC_PAGES = ["/", "/pricing", "/register", "/login"]
MEMBER_PAGES = ["/dashboard", "/keys", "/account", "/billing", "/billing/history"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def _register(page: Page) -> str:
    page.goto("/register")
    page.fill("#email", f"demo{uuid.uuid4().hex[:8]}@example.com")
    page.fill("#phone", f"+96550{uuid.uuid4().int % 1_000_000:06d}")
    page.fill("#password", "a long passphrase")
    page.press("#password", "Enter")
    page.wait_for_url("**/dashboard")
    page.fill("#label", "production")
    page.click('[data-testid="create-key"]')
    return page.inner_text('[data-testid="new-key"]').strip()


def _use(stack: Stack, key: str) -> None:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key, max_retries=0) as client:
        for model in ["llama3.2:3b", "llama3.2:3b", "smollm2:135m"]:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi [[sim:tokens=20]]"}]
            )


def _shooter(page: Page, prefix: str) -> Callable[[str], None]:
    def shoot(path: str) -> None:
        page.goto(path)
        slug = path.strip("/") or "landing"
        page.screenshot(path=OUT / f"{prefix}-{slug}.png", full_page=True)

    return shoot


def main() -> int:
    OUT.mkdir(exist_ok=True)
    redis = start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="resayil-screens-"))
    stack = Stack(
        database_url=f"sqlite:///{workdir / 'resayil.db'}", redis_url=redis.url, workdir=workdir
    )
    try:
        stack.start()
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox"]
            )
            for language in ("en", "ar"):
                for name, viewport in VIEWPORTS.items():
                    context = browser.new_context(
                        base_url=stack.api_url,
                        viewport=viewport,
                        locale=language,
                        extra_http_headers={"accept-language": language},
                    )
                    page = context.new_page()
                    shoot = _shooter(page, f"{language}-{name}")
                    for path in PUBLIC_PAGES:
                        shoot(path)
                    key = _register(page)
                    page.screenshot(path=OUT / f"{language}-{name}-key-created.png", full_page=True)
                    _use(stack, key)
                    for path in MEMBER_PAGES:
                        shoot(path)
                    context.close()
            browser.close()
    finally:
        stack.stop()
        redis.stop()
    shots = sorted(OUT.glob("*.png"))
    print(f"{len(shots)} screenshots in {OUT}/")
    return 0 if shots else 1


if __name__ == "__main__":
    sys.exit(main())
