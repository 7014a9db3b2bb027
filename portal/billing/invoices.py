"""An account's invoice as a document, ready to render as PDF."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.billing.history import find_order
from portal.billing.invoice_pdf import InvoiceDocument, InvoiceLine, render_invoice_pdf
from portal.exceptions import NotFound
from portal.translatable import N_
from schema.models import Invoice, Order, User
from schema.models.billing import invoice_id_of


def invoice_document(session: Session, *, account_id: int, number: str) -> InvoiceDocument:
    """The account's invoice by number; another account's is 'not found'."""
    invoice_id = invoice_id_of(number)
    row = None
    if invoice_id is not None:
        row = session.execute(
            select(Invoice, User)
            .join(Order, Order.id == Invoice.order_id)
            .outerjoin(User, User.id == Order.user_id)
            .where(Invoice.id == invoice_id, Invoice.account_id == account_id)
        ).first()
    if row is None:
        raise NotFound(N_("No such invoice."), code="invoice_not_found")
    invoice, user = row
    email, phone = (user.email, user.phone) if user is not None else ("", "")
    order = find_order(session, account_id=account_id, order_id=invoice.order_id)
    if order.kind == "plan":
        description_en = (
            f"{order.item_name_en} plan, {order.period_days} days, {order.credits:,} credits"
        )
        description_ar = f"{order.item_name_ar}: {order.period_days} يومًا، {order.credits:,} رصيد"
    else:
        description_en = f"Top-up: {order.credits:,} credits"
        description_ar = f"شحن رصيد: {order.credits:,} رصيد"
    return InvoiceDocument(
        number=invoice.number,
        issued_at=invoice.issued_at,
        order_id=order.id,
        customer_name=email.split("@", 1)[0],
        customer_email=email,
        customer_phone=phone,
        lines=(InvoiceLine(description_en, description_ar, 1, invoice.amount_fils),),
        payment_method=order.payment_method or "",
        payment_id=order.payment_id or "",
    )


def invoice_pdf(session: Session, *, account_id: int, number: str) -> tuple[str, bytes]:
    document = invoice_document(session, account_id=account_id, number=number)
    return document.number, render_invoice_pdf(document)
