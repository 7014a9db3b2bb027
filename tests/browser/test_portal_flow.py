"""A visitor's whole journey in a real browser, in English and in Arabic:
landing -> register -> dashboard -> create key -> copy it -> call the API with it ->
see the request on the dashboard -> delete the key -> the key is refused -> log out."""

from __future__ import annotations

import re
import time

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.phones import unused_phone
from tests.portal.people import PASSWORD, fresh_email
from tests.stack import Stack

ARABIC = re.compile(r"[\u0600-\u06FF]")
MODEL = "llama3.2:3b"


def _check_language(page: Page, language: str) -> None:
    html = page.locator("html")
    expect(html).to_have_attribute("lang", language)
    expect(html).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")
    heading = page.locator("h1").first.inner_text()
    assert bool(ARABIC.search(heading)) == (language == "ar"), heading


def _chat(stack: Stack, key: str) -> str:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key, max_retries=0) as client:
        reply = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello [[sim:tokens=5]]"}]
        )
    return reply.choices[0].message.content or ""


def _wait_for_request_on_dashboard(page: Page) -> None:
    """Settlement is asynchronous: reload until today's bar shows the request."""
    deadline = time.monotonic() + 15
    while True:
        page.goto("/dashboard")
        today = page.locator('[data-chart="days"] g').last
        if today.get_attribute("data-requests") == "1" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert today.get_attribute("data-requests") == "1"
    this_hour = page.locator('[data-chart="hours"] g').last
    assert this_hour.get_attribute("data-requests") == "1"
    row = page.locator(f'[data-testid="usage-by-model"] tr[data-model="{MODEL}"]')
    expect(row).to_be_visible()
    cells = row.locator("td").all_inner_texts()
    assert cells[1:4] == ["1", "1", "0"]  # requests, local, cloud


@pytest.mark.parametrize("language", ["en", "ar"])
def test_visitor_journey(stack: Stack, context: BrowserContext, language: str) -> None:
    page = context.new_page()
    page.goto("/")
    if language == "ar":
        page.get_by_test_id("language-switch").click()
    _check_language(page, language)
    expect(page.locator("[data-plan]")).to_have_count(3)
    expect(page.locator("pre").first).to_contain_text(f"{stack.api_url}/v1")

    page.get_by_test_id("cta-register").click()
    expect(page).to_have_url(re.compile(r"/register$"))
    _check_language(page, language)
    page.locator("#email").fill(fresh_email())
    page.locator("#phone").fill(unused_phone())
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")  # forms work from the keyboard

    expect(page).to_have_url(re.compile(r"/dashboard$"))
    _check_language(page, language)
    expect(page.get_by_test_id("credits-remaining")).to_have_text("25")
    expect(page.get_by_test_id("top-up")).to_have_attribute("href", "/billing")

    page.locator("#label").fill("browser test")
    page.get_by_test_id("create-key").click()
    shown = page.get_by_test_id("new-key").inner_text().strip()
    assert shown.startswith("rsy-")
    page.get_by_test_id("copy-key").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown

    assert _chat(stack, copied)
    _wait_for_request_on_dashboard(page)
    _check_language(page, language)
    expect(page.get_by_test_id("credits-remaining")).to_have_text("24")

    page.goto("/keys")
    row = page.locator('[data-testid="keys-table"] tr[data-key-id]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text(copied[:12])
    assert copied not in page.content()  # never shown again
    row.locator("a").click()
    _check_language(page, language)
    page.get_by_test_id("confirm-delete").click()
    expect(page).to_have_url(re.compile(r"/keys\?deleted=1$"))
    expect(page.locator('[data-testid="keys-table"] tr[data-key-id]')).to_have_count(0)
    with pytest.raises(openai.AuthenticationError):
        _chat(stack, copied)

    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/$"))
    _check_language(page, language)  # the language outlives the session
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login\?next=/dashboard$"))
