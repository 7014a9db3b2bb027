"""A customer buys the Pro plan and a 15K pack in headless Chromium, paying on the
MyFatoorah double's page, and sees plan, expiry and balance change; the PDF invoice is
downloaded and read back."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pypdfium2
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from simulator.myfatoorah.cards import FAILURE_CARDS, SUCCESS_CARDS
from tests.phones import unused_phone
from tests.portal.people import PASSWORD, fresh_email
from tests.stack import Stack

KUWAIT = ZoneInfo("Asia/Kuwait")
TRIAL_CREDITS, PRO_CREDITS, PACK_CREDITS = 25, 5_000, 15_000


def _sign_up(page: Page, language: str) -> None:
    page.goto("/register")
    if language == "ar":
        page.get_by_test_id("language-switch").click()
    page.locator("#email").fill(fresh_email())
    page.locator("#phone").fill(unused_phone())
    page.locator("#password").fill(PASSWORD)
    page.locator("#password").press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def _pay(page: Page, card: str) -> None:
    """On MyFatoorah's (the double's) page: type the card, pay, come back to us."""
    expect(page).to_have_url(re.compile(r"/pay/\d+$"))
    page.locator("#card_number").fill(card)
    page.locator("#pay").click()
    expect(page).to_have_url(re.compile(r"/billing/orders/\d+$"))


def _kuwait_date(moment: datetime) -> str:
    return moment.astimezone(KUWAIT).strftime("%Y-%m-%d")


@pytest.mark.parametrize("language", ["en", "ar"])
def test_buying_pro_and_a_15k_pack(stack: Stack, context: BrowserContext, language: str) -> None:
    page = context.new_page()
    _sign_up(page, language)
    page.goto("/billing")
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if language == "ar" else "ltr")
    expect(page.get_by_test_id("plan-status")).to_have_attribute("data-status", "active")
    expect(page.get_by_test_id("balance")).to_have_text(str(TRIAL_CREDITS))

    # The Pro plan, paid at once.
    page.get_by_test_id("buy-plan-pro").click()
    bought_at = datetime.now(UTC)
    _pay(page, SUCCESS_CARDS[0])
    expect(page.get_by_test_id("order-paid")).to_be_visible()
    page.goto("/billing")
    expect(page.get_by_test_id("plan-name")).to_have_text(
        "الاحترافية" if language == "ar" else "Pro"
    )
    expect(page.get_by_test_id("plan-status")).to_have_attribute("data-status", "active")
    expires = page.get_by_test_id("plan-expires")
    ends = datetime.fromisoformat(expires.get_attribute("datetime") or "")
    assert bought_at + timedelta(days=30) - timedelta(minutes=5) < ends
    assert ends < datetime.now(UTC) + timedelta(days=30)
    expect(expires).to_have_text(_kuwait_date(ends))
    expect(page.get_by_test_id("balance")).to_have_text(f"{TRIAL_CREDITS + PRO_CREDITS:,}")

    # The 15K pack: declined first (told why, in the page's language), then paid.
    page.get_by_test_id("buy-pack-15k").click()
    _pay(page, FAILURE_CARDS["MF004"])
    failed = page.get_by_test_id("order-failed")
    expect(failed).to_contain_text("بطاقتك" if language == "ar" else "enough funds")
    page.get_by_test_id("pay-again").click()
    _pay(page, SUCCESS_CARDS[1])
    expect(page.get_by_test_id("order-paid")).to_be_visible()

    page.goto("/dashboard")
    total = TRIAL_CREDITS + PRO_CREDITS + PACK_CREDITS
    expect(page.get_by_test_id("credits-remaining")).to_have_text(f"{total:,}")
    expect(page.get_by_test_id("plan-expires")).to_have_text(_kuwait_date(ends))

    page.goto("/billing/history")
    rows = page.locator("[data-testid=orders] tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("tr[data-status=paid]")).to_have_count(2)
    pack_row = rows.first  # newest first
    expect(pack_row).to_contain_text("13.500")

    with page.expect_download() as download:
        pack_row.get_by_test_id("invoice-link").click()
    pdf = pypdfium2.PdfDocument(download.value.path())
    text = pdf[0].get_textpage().get_text_range()
    number = pack_row.get_by_test_id("invoice-link").inner_text().strip()
    assert number in text
    assert "13.500 KWD" in text
    dark_pixels = sum(pdf[0].render(scale=1).to_pil().convert("L").histogram()[:128])
    pdf.close()
    assert dark_pixels > 1000  # the page has ink, not just text objects

    exported = context.request.get("/billing/history.csv")
    assert exported.ok
    lines = list(csv.DictReader(io.StringIO(exported.text().lstrip("\ufeff"))))
    assert sorted(line["amount_kwd"] for line in lines) == ["13.500", "15.000"]
    assert {line["status"] for line in lines} == {"paid"}
    assert number in {line["invoice_number"] for line in lines}
