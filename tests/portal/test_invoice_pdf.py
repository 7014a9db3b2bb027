"""The bilingual PDF invoice, read back with pdfium: its text, its pixels, its metadata."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from PIL import Image

import portal.billing
from portal.billing.invoice_pdf import (
    FONTS_DIR,
    InvoiceDocument,
    InvoiceLine,
    format_kwd,
    render_invoice_pdf,
)

LINES = (
    InvoiceLine("Pro plan, 30 days", "الخطة الاحترافية لمدة 30 يومًا", 1, 15_000),
    InvoiceLine("15,000 credits", "15,000 رصيد", 1, 5_500),
)
CUSTOMER_AR = "رشا سعيد"


def make_document(**changes: Any) -> InvoiceDocument:
    document = InvoiceDocument(
        number="INV-000042",
        issued_at=datetime(2025, 1, 2, 12, 4, tzinfo=UTC),
        order_id=4242,
        customer_name=CUSTOMER_AR,
        customer_email="rasha.saeed@example.com.kw",
        customer_phone="+965 5555 1234",
        lines=LINES,
        payment_method="KNET",
        payment_id="07072568917135416172",
    )
    return replace(document, **changes)


def dinars(fils: int) -> str:
    """The test's own rendering of an amount (no thousands here), to compare with the PDF's."""
    assert 0 <= fils < 1_000_000
    return f"{fils // 1000}.{fils % 1000:03d}"


def page_texts(pdf: bytes) -> list[str]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [page.get_textpage().get_text_bounded() for page in document]
    finally:
        document.close()


def page_image(pdf: bytes, index: int = 0) -> Image.Image:
    document = pdfium.PdfDocument(pdf)
    try:
        image: Image.Image = document[index].render(scale=1).to_pil().convert("L")
        return image
    finally:
        document.close()


# pdfium lays each extracted line out in *one* direction, chosen per line: on a line with
# more Arabic than Latin it reads right to left, so "Payment ID" comes back as "ID Payment"
# (and on other lines the Arabic words of a phrase swap). Phrases are therefore compared
# as words that share one line, in any order; single tokens (numbers, ids, the email) are
# never split, so they are compared as they are.
def has_phrase(text: str, phrase: str) -> bool:
    wanted = set(re.findall(r"\w+", phrase))
    return any(wanted <= set(re.findall(r"\w+", line)) for line in text.splitlines())


# Arabic comes back shaped: a reader may give presentation forms (U+FB50-U+FEFF), which
# NFKC folds back to the base letters; vowel marks (tanween in "يومًا") may move to
# another spot, so marks are dropped. Whole words are then looked up, forwards or
# reversed (visual order, from extractors that do not undo bidi). Lam + alef (or alef
# maksura) is drawn as one ligature glyph, whose two letters pdfium gives back swapped
# ("الإجمالي" -> "اإلجمالي", "إلى" -> "إىل"), so such a pair may come in either order.
ALEFS = "اأإآى"


def arabic_words(text: str) -> set[str]:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return set(re.findall(r"[\u0621-\u064A]+", text))


def spellings(word: str) -> set[str]:
    forms = {word}
    for i in range(len(word) - 1):
        if word[i] == "ل" and word[i + 1] in ALEFS:
            forms |= {f[:i] + f[i + 1] + f[i] + f[i + 2 :] for f in forms}
    return forms | {form[::-1] for form in forms}


def has_arabic(text: str, phrase: str) -> bool:
    found = arabic_words(text)
    return all(spellings(word) & found for word in arabic_words(phrase))


@pytest.fixture(scope="module")
def document() -> InvoiceDocument:
    return make_document()


@pytest.fixture(scope="module")
def pdf(document: InvoiceDocument) -> bytes:
    return render_invoice_pdf(document)


def test_the_arabic_checks_can_fail() -> None:
    assert has_arabic("x الإجمالي y", "الإجمالي")
    assert has_arabic("اإلجمالي", "الإجمالي")  # as pdfium gives it back
    assert has_arabic("ﻓﺎﺗﻮﺭﺓ", "فاتورة")  # presentation forms
    assert has_arabic("ةروتاف", "فاتورة")  # visual order
    assert has_arabic("إىل", "إلى")
    assert not has_arabic("فاتور", "فاتورة")
    assert not has_arabic("Invoice", "فاتورة")
    assert has_phrase("a\nID Payment 42\nb", "Payment ID")
    assert not has_phrase("Payment\nID", "Payment ID")


def test_the_text_carries_the_invoice(document: InvoiceDocument, pdf: bytes) -> None:
    [text] = page_texts(pdf)
    total = sum(line.quantity * line.unit_price_fils for line in LINES)
    assert document.total_fils == total
    assert f"{dinars(total)} KWD" in text
    for line in LINES:
        assert dinars(line.unit_price_fils) in text
    for token in ("INV-000042", "4242", "KNET", "07072568917135416172"):
        assert token in text
    assert "rasha.saeed@example.com.kw" in text
    assert "+965 5555 1234" in text
    assert "2025-01-02 15:04" in text  # 12:04 UTC is 15:04 in Kuwait
    for label in (
        "Resayil LLM Portal",
        "Invoice",
        "Invoice details",
        "Invoice number",
        "Date",
        "Order ID",
        "Payment method",
        "Payment ID",
        "Status",
        "Paid",
        "Bill to",
        "Name",
        "Email",
        "Phone",
        "Description",
        "Qty",
        "Unit price",
        "Amount",
        "Total",
        "Pro plan, 30 days",
        "15,000 credits",
    ):
        assert has_phrase(text, label), label


def test_the_text_carries_the_arabic(pdf: bytes) -> None:
    [text] = page_texts(pdf)
    assert any("\u0600" <= c <= "\u06ff" for c in unicodedata.normalize("NFKC", text))
    for phrase in (
        "فاتورة",
        CUSTOMER_AR,
        "بوابة رسايل للذكاء الاصطناعي",
        "تفاصيل الفاتورة",
        "رقم الفاتورة",
        "التاريخ",
        "رقم الطلب",
        "طريقة الدفع",
        "رقم عملية الدفع",
        "الحالة",
        "مدفوعة",
        "فاتورة إلى",
        "الاسم",
        "البريد الإلكتروني",
        "الهاتف",
        "الوصف",
        "الكمية",
        "سعر الوحدة",
        "المبلغ",
        "الإجمالي",
        "الخطة الاحترافية لمدة يومًا",
        "رصيد",
    ):
        assert has_arabic(text, phrase), phrase
    assert not has_arabic(text, "مرتجع")  # a word that is not on the invoice
    # Stricter: pdfium turns a right-to-left run of glyphs back into logical order, so
    # words drawn shaped and right-to-left come back forwards. Unshaped Arabic (letters
    # drawn left-to-right in logical order, unjoined) would come back reversed.
    found = arabic_words(text)
    assert {"فاتورة", "رشا", "سعيد", "رصيد"} <= found
    assert "د.ك" in unicodedata.normalize("NFKC", text)


def test_the_page_has_ink(pdf: bytes) -> None:
    image = page_image(pdf)
    width, height = image.size

    def ink(box: tuple[int, int, int, int]) -> float:
        region = image.crop(box)
        return sum(region.histogram()[:200]) / (region.width * region.height)

    assert ink((0, 0, width, height)) > 0.02
    header = height * 12 // 100  # the seller's names and the title, above the rule
    assert ink((width // 2, 0, width, header)) > 0.03  # the Arabic half
    assert ink((0, 0, width // 2, header)) > 0.03
    assert ink((0, height - 30, width, height)) == 0  # below the footer: blank paper


def test_the_header_is_mirrored(pdf: bytes) -> None:
    """Each header line: English flush with the left margin, Arabic with the right one."""
    image = page_image(pdf)
    width, height = image.size
    mm = width / 210
    ink = image.point(lambda v: 255 if v < 200 else 0)  # ink white on black, for getbbox
    header = ink.crop((0, 0, width, height * 12 // 100))
    rows = [y for y in range(header.height) if header.crop((0, y, width, y + 1)).getbbox()]
    bands: list[list[int]] = []
    for y in rows:
        if bands and y - bands[-1][-1] <= 3:
            bands[-1].append(y)
        else:
            bands.append([y])
    assert len(bands) == 2  # the seller's names, then "Invoice" and "فاتورة"
    for band in bands:
        left = header.crop((0, band[0], width // 2, band[-1] + 1)).getbbox()
        right = header.crop((width // 2, band[0], width, band[-1] + 1)).getbbox()
        assert left is not None and right is not None
        assert left[0] < 17 * mm  # the margins are 15 mm
        assert width // 2 + right[2] > width - 17 * mm


def test_metadata_and_deterministic_output(document: InvoiceDocument, pdf: bytes) -> None:
    assert pdf.startswith(b"%PDF-")
    assert render_invoice_pdf(document) == pdf
    reader = pdfium.PdfDocument(pdf)
    try:
        metadata = reader.get_metadata_dict()
    finally:
        reader.close()
    assert metadata["Title"] == "INV-000042"
    assert metadata["CreationDate"].startswith("D:20250102")
    later = render_invoice_pdf(replace(document, issued_at=document.issued_at + timedelta(1)))
    assert later != pdf


def test_the_date_is_on_the_kuwaiti_clock() -> None:
    late_in_utc = datetime(2025, 1, 2, 21, 30, tzinfo=UTC)
    in_los_angeles = late_in_utc.astimezone(timezone(timedelta(hours=-8)))
    for issued_at in (late_in_utc, in_los_angeles):
        [text] = page_texts(render_invoice_pdf(make_document(issued_at=issued_at)))
        assert "2025-01-03 00:30" in text


@pytest.mark.parametrize(
    ("fils", "text"),
    [
        (0, "0.000"),
        (5, "0.005"),
        (500, "0.500"),
        (12_500, "12.500"),
        (999_999, "999.999"),
        (1_000_000, "1,000.000"),
        (1_234_567, "1,234.567"),
        (12_345_500, "12,345.500"),
        (-1_500, "-1.500"),
        (-5, "-0.005"),
        (10**18 + 1, "1,000,000,000,000,000.001"),
    ],
)
def test_format_kwd(fils: int, text: str) -> None:
    assert format_kwd(fils) == text


def test_money_must_be_integer_fils() -> None:
    with pytest.raises(TypeError):
        format_kwd(12.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        InvoiceLine("x", "س", 1, 12.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        make_document(issued_at=datetime(2025, 1, 2, 12, 4))


def test_thirty_lines_flow_onto_a_second_page() -> None:
    lines = tuple(
        InvoiceLine(f"Credit pack #{n}", f"باقة رصيد رقم {n}", n, 1_250) for n in range(1, 31)
    )
    pdf = render_invoice_pdf(make_document(lines=lines))
    first, second = page_texts(pdf)
    total = sum(line.quantity * line.unit_price_fils for line in lines)
    assert f"{dinars(total)} KWD" in second
    assert dinars(total) not in first
    # "#n" survives pdfium's reordering of the line ("#1 pack Credit"), so it locates line n.
    assert re.search(r"#1\b", first) and not re.search(r"#30\b", first)
    assert re.search(r"#30\b", second) and not re.search(r"#1\b", second)
    assert has_phrase(second, "Unit price")  # the headings repeat on the new page
    assert has_phrase(first, "Page 1 / 2") and has_phrase(second, "Page 2 / 2")


def test_digits_are_latin_and_text_is_literal() -> None:
    line = InvoiceLine("Pack {nb}", "باقة ٣٠ يومًا", 2, 1_000)
    [text] = page_texts(render_invoice_pdf(make_document(lines=(line,))))
    assert "Pack {nb}" in text
    assert "30" in text
    assert not re.search("[\u0660-\u0669\u06f0-\u06f9]", text)  # Arabic-Indic, Persian


def test_fonts_ship_with_the_package(pdf: bytes) -> None:
    package_fonts = Path(portal.billing.__file__).resolve().parent / "fonts"
    assert package_fonts == FONTS_DIR
    for name in (
        "NotoSans-Regular.ttf",
        "NotoSans-Bold.ttf",
        "NotoSansArabic-Regular.ttf",
        "NotoSansArabic-Bold.ttf",
    ):
        assert (package_fonts / name).read_bytes()[:4] == b"\x00\x01\x00\x00", name
    assert "SIL OPEN FONT LICENSE" in (package_fonts / "OFL.txt").read_text()
    embedded = set(re.findall(rb"/BaseFont /[A-Z]{6}\+(\w+)", pdf))
    assert {b"NotoSans", b"NotoSansBold", b"NotoSansArabic"} <= embedded
