"""Mirrored bilingual blocks for PDF documents: English on the left, Arabic on the right.

This module knows how a bilingual page looks (fonts, colours, tables) but nothing about
invoices; `portal.billing.invoice_pdf` decides what goes into the blocks.

Arabic is shaped by HarfBuzz (fpdf2's text shaping, through uharfbuzz), which joins the
letters and lays each right-to-left run out by the Unicode bidi algorithm. The body font is
Noto Sans; characters it lacks (Arabic) fall back to Noto Sans Arabic, so one string may mix
both scripts. The fonts are bundled in `fonts/`, next to this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
"""The bundled Noto fonts (SIL OFL 1.1, see `fonts/OFL.txt`), never the system's."""

FONT_FILES = {
    ("NotoSans", ""): "NotoSans-Regular.ttf",
    ("NotoSans", "B"): "NotoSans-Bold.ttf",
    ("NotoSansArabic", ""): "NotoSansArabic-Regular.ttf",
    ("NotoSansArabic", "B"): "NotoSansArabic-Bold.ttf",
}

MARGIN = 15.0  # mm, on every side
ACCENT = (22, 78, 99)
MUTED = (100, 110, 120)
HEADING_FILL = (229, 239, 242)
BODY_PT = 9.5
LINE_MM = 5.0

_HEADINGS = FontFace(emphasis="B", color=ACCENT, fill_color=HEADING_FILL)
_TOTAL = FontFace(emphasis="B", size_pt=11, fill_color=HEADING_FILL)

# Arabic-Indic and Persian digits, which the page always prints as Latin digits.
_LATIN_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)


def latin_digits(text: str) -> str:
    return text.translate(_LATIN_DIGITS)


@dataclass(frozen=True)
class Bilingual:
    en: str
    ar: str


class BilingualPDF(FPDF):
    """An A4 page with the bundled fonts, text shaping and a bilingual page footer."""

    def __init__(self, *, footer_note: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_note = footer_note
        self.alias_nb_pages("")  # page counts come from draw_page_footers: keep "{nb}" literal
        for (family, style), name in FONT_FILES.items():
            self.add_font(family, style, FONTS_DIR / name)
        self.set_fallback_fonts(["NotoSansArabic"])
        self.set_text_shaping(use_shaping_engine=True)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN + 8)
        self.set_font("NotoSans", "", BODY_PT)

    def footer(self) -> None:
        """No footer while writing: `draw_page_footers` adds them once the page count is known."""

    def draw_page_footers(self) -> None:
        """Write "Page n / N" on every page, in both languages (no `{nb}` alias, which
        leaves a gap inside shaped right-to-left text)."""
        count = self.pages_count
        self.set_auto_page_break(auto=False)
        self.set_font("NotoSans", "", 8)
        self.set_text_color(*MUTED)
        half = self.epw / 2
        for number in range(1, count + 1):
            self.page = number  # rewinding, as fpdf2 itself does (html.py, text_region.py)
            self.set_xy(self.l_margin, self.h - MARGIN - 4)
            self.cell(half, LINE_MM, f"{self.footer_note} · Page {number} / {count}", align=Align.L)
            self.cell(half, LINE_MM, f"صفحة {number} من {count}", align=Align.R)


def new_document(
    *, title: str, author: str, subject: str, created_at: datetime, footer_note: str
) -> BilingualPDF:
    pdf = BilingualPDF(footer_note=footer_note)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator(author)
    pdf.set_subject(subject)
    pdf.set_lang("en")
    pdf.set_creation_date(created_at)  # instead of "now": the same invoice, the same bytes
    pdf.add_page()
    return pdf


def _pair(pdf: FPDF, text: Bilingual, *, height: float) -> None:
    """One line: the English flush left, the Arabic flush right."""
    half = pdf.epw / 2
    pdf.cell(half, height, latin_digits(text.en), align=Align.L)
    pdf.cell(half, height, latin_digits(text.ar), align=Align.R)
    pdf.ln(height)


def draw_header(pdf: FPDF, *, seller: Bilingual, title: Bilingual) -> None:
    pdf.set_font("NotoSans", "B", 13)
    _pair(pdf, seller, height=8)
    pdf.set_text_color(*ACCENT)
    pdf.set_font("NotoSans", "B", 24)
    _pair(pdf, title, height=13)
    pdf.set_text_color(0)
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y() + 2, pdf.w - pdf.r_margin, pdf.get_y() + 2)
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0)
    pdf.ln(6)
    pdf.set_font("NotoSans", "", BODY_PT)


def draw_fields(pdf: FPDF, *, heading: Bilingual, fields: Sequence[tuple[Bilingual, str]]) -> None:
    """Labelled values: English label | value | Arabic label."""
    third = pdf.epw / 3
    with pdf.table(
        col_widths=(third, third, third),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=_HEADINGS,
        line_height=LINE_MM,
        padding=(1.2, 2),
    ) as table:
        row = table.row()
        row.cell(heading.en, align=Align.L)
        row.cell("")
        row.cell(heading.ar, align=Align.R)
        for label, value in fields:
            row = table.row()
            row.cell(label.en, align=Align.L)
            row.cell(latin_digits(value), align=Align.C)
            row.cell(label.ar, align=Align.R)
    pdf.ln(5)


@dataclass(frozen=True)
class ItemRow:
    description: Bilingual
    quantity: str
    unit_price: str
    amount: str


def draw_items(
    pdf: FPDF,
    *,
    headings: tuple[Bilingual, Bilingual, Bilingual, Bilingual],
    items: Sequence[ItemRow],
    total_label: Bilingual,
    total_amount: Bilingual,
) -> None:
    """The item table, mirrored: English description | numbers | Arabic description.

    The headings row repeats on every page the table flows onto; the total closes it.
    """
    description, quantity, unit_price, amount = headings
    with pdf.table(
        col_widths=(54, 16, 28, 28, 54),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=_HEADINGS,
        line_height=LINE_MM,
        padding=(1.5, 2),
        v_align="MIDDLE",
    ) as table:
        row = table.row()
        row.cell(description.en, align=Align.L)
        for label in (quantity, unit_price, amount):
            row.cell(f"{label.en}\n{label.ar}", align=Align.R)
        row.cell(description.ar, align=Align.R)
        for item in items:
            row = table.row()
            row.cell(latin_digits(item.description.en), align=Align.L)
            for number in (item.quantity, item.unit_price, item.amount):
                row.cell(number, align=Align.R)
            row.cell(latin_digits(item.description.ar), align=Align.R)
        row = table.row(style=_TOTAL)
        row.cell(total_label.en, align=Align.L)
        row.cell(f"{total_amount.en}\n{total_amount.ar}", align=Align.R, colspan=3)
        row.cell(total_label.ar, align=Align.R)
    pdf.ln(5)


def draw_note(pdf: FPDF, note: Bilingual) -> None:
    """A closing paragraph: the English left-aligned, then the Arabic right-aligned."""
    pdf.set_text_color(*MUTED)
    for text, align in ((note.en, Align.L), (note.ar, Align.R)):
        pdf.multi_cell(
            0, LINE_MM, latin_digits(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    pdf.set_text_color(0)


def to_bytes(pdf: BilingualPDF) -> bytes:
    pdf.draw_page_footers()
    return bytes(pdf.output())
