"""Bilingual (English + Arabic) PDF invoices, rendered with fpdf2.

Money is integer fils (1 KWD = 1000 fils) from end to end; nothing here touches a float.
The page mirrors itself the way Gulf invoices usually do: English on the left, Arabic
(shaped by HarfBuzz, laid out right-to-left) on the right, and numbers in the middle.
The drawing itself lives in `portal.billing.invoice_layout`; this module decides what
goes on an invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from portal.billing import invoice_layout as layout
from portal.billing.invoice_layout import FONTS_DIR, Bilingual, ItemRow
from schema.money import format_kwd

__all__ = [
    "FONTS_DIR",
    "InvoiceDocument",
    "InvoiceLine",
    "format_kwd",
    "render_invoice_pdf",
]

KUWAIT = ZoneInfo("Asia/Kuwait")


def _require_int(name: str, value: object) -> None:
    # bool is an int subclass, and a float here would be a money bug: refuse both.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


@dataclass(frozen=True)
class InvoiceLine:
    description_en: str
    description_ar: str
    quantity: int
    unit_price_fils: int

    def __post_init__(self) -> None:
        _require_int("quantity", self.quantity)
        _require_int("unit_price_fils", self.unit_price_fils)
        if self.quantity < 1:
            raise ValueError(f"quantity must be at least 1, not {self.quantity}")

    @property
    def total_fils(self) -> int:
        return self.quantity * self.unit_price_fils


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    issued_at: datetime
    order_id: int
    customer_name: str
    customer_email: str
    customer_phone: str
    lines: tuple[InvoiceLine, ...]
    payment_method: str
    payment_id: str
    seller_name_en: str = "Resayil LLM Portal"
    seller_name_ar: str = "بوابة رسايل للذكاء الاصطناعي"

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None or self.issued_at.utcoffset() is None:
            raise ValueError("issued_at must be timezone-aware")
        if not self.lines:
            raise ValueError("an invoice needs at least one line")

    @property
    def total_fils(self) -> int:
        return sum(line.total_fils for line in self.lines)

    @property
    def issued_at_kuwait(self) -> str:
        """The issue time on a Kuwaiti wall clock, as YYYY-MM-DD HH:MM."""
        return self.issued_at.astimezone(KUWAIT).strftime("%Y-%m-%d %H:%M")


def render_invoice_pdf(document: InvoiceDocument) -> bytes:
    """The invoice as the bytes of an A4 PDF (more pages when the lines need them).

    The output is deterministic: the PDF creation date is `issued_at`, so the same
    document always renders to the same bytes.
    """
    total = format_kwd(document.total_fils)
    pdf = layout.new_document(
        title=document.number,
        author=document.seller_name_en,
        subject=f"Invoice / فاتورة {document.number}",
        created_at=document.issued_at,
        footer_note=document.number,
    )
    layout.draw_header(
        pdf,
        seller=Bilingual(document.seller_name_en, document.seller_name_ar),
        title=Bilingual("Invoice", "فاتورة"),
    )
    layout.draw_fields(
        pdf,
        heading=Bilingual("Invoice details", "تفاصيل الفاتورة"),
        fields=(
            (Bilingual("Invoice number", "رقم الفاتورة"), document.number),
            (Bilingual("Date (Kuwait time)", "التاريخ (بتوقيت الكويت)"), document.issued_at_kuwait),
            (Bilingual("Order ID", "رقم الطلب"), str(document.order_id)),
            (Bilingual("Payment method", "طريقة الدفع"), document.payment_method),
            (Bilingual("Payment ID", "رقم عملية الدفع"), document.payment_id),
            (Bilingual("Status", "الحالة"), "Paid / مدفوعة"),
        ),
    )
    layout.draw_fields(
        pdf,
        heading=Bilingual("Bill to", "فاتورة إلى"),
        fields=(
            (Bilingual("Name", "الاسم"), document.customer_name),
            (Bilingual("Email", "البريد الإلكتروني"), document.customer_email),
            (Bilingual("Phone", "الهاتف"), document.customer_phone),
        ),
    )
    layout.draw_items(
        pdf,
        headings=(
            Bilingual("Description", "الوصف"),
            Bilingual("Qty", "الكمية"),
            Bilingual("Unit price", "سعر الوحدة"),
            Bilingual("Amount", "المبلغ"),
        ),
        items=[
            ItemRow(
                description=Bilingual(line.description_en, line.description_ar),
                quantity=str(line.quantity),
                unit_price=format_kwd(line.unit_price_fils),
                amount=format_kwd(line.total_fils),
            )
            for line in document.lines
        ],
        total_label=Bilingual("Total", "الإجمالي"),
        total_amount=Bilingual(f"{total} KWD", f"{total} د.ك"),
    )
    layout.draw_note(
        pdf,
        Bilingual(
            f"Paid in full by {document.payment_method}. Amounts are in Kuwaiti dinars. "
            "Thank you for your business.",
            f"تم الدفع بالكامل عبر {document.payment_method}. المبالغ بالدينار الكويتي. "
            "شكرًا لتعاملكم معنا.",
        ),
    )
    return layout.to_bytes(pdf)
