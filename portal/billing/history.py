"""An account's orders and invoices as it may see them, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from portal.billing.failures import failure_message
from portal.exceptions import NotFound
from portal.translatable import N_
from schema.models import Invoice, Order, Plan, TopUpPack
from schema.models.billing import invoice_number

HISTORY_LIMIT = 500


@dataclass(frozen=True)
class OrderView:
    id: int
    kind: str
    item_code: str
    item_name_en: str
    item_name_ar: str
    credits: int
    period_days: int
    amount_fils: int
    currency: str
    status: str
    failure_code: str | None
    payment_url: str | None
    payment_id: str | None
    payment_method: str | None
    created_at: datetime
    paid_at: datetime | None
    invoice_number: str | None

    def item_name(self, language: str) -> str:
        return self.item_name_ar if language == "ar" else self.item_name_en

    @property
    def failure_message(self) -> str | None:
        if self.status in ("failed", "review"):
            return failure_message(self.failure_code)
        return None

    @property
    def payable(self) -> bool:
        """The customer can (still, or again) pay it on MyFatoorah's page."""
        return self.status in ("pending", "failed") and bool(self.payment_url)


def _views(session: Session, *conditions: ColumnElement[bool], limit: int) -> list[OrderView]:
    rows = session.execute(
        select(Order, Invoice.id, Plan.name_en, Plan.name_ar, TopUpPack.name_en, TopUpPack.name_ar)
        .outerjoin(Invoice, Invoice.order_id == Order.id)
        .outerjoin(Plan, (Order.kind == "plan") & (Plan.code == Order.item_code))
        .outerjoin(TopUpPack, (Order.kind == "pack") & (TopUpPack.code == Order.item_code))
        .where(*conditions)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(limit)
    ).all()
    views = []
    for order, invoice_id, plan_en, plan_ar, pack_en, pack_ar in rows:
        views.append(
            OrderView(
                order.id,
                order.kind,
                order.item_code,
                plan_en or pack_en or order.item_code,
                plan_ar or pack_ar or order.item_code,
                order.credits,
                order.period_days,
                order.amount_fils,
                order.currency,
                order.status,
                order.failure_code,
                order.payment_url,
                order.payment_id,
                order.payment_method,
                order.created_at,
                order.paid_at,
                invoice_number(invoice_id) if invoice_id is not None else None,
            )
        )
    return views


def list_orders(
    session: Session, *, account_id: int, limit: int = HISTORY_LIMIT
) -> list[OrderView]:
    """The account's orders, newest first (orders never sent to MyFatoorah left out)."""
    return _views(session, Order.account_id == account_id, Order.status != "created", limit=limit)


def find_order(session: Session, *, account_id: int, order_id: int) -> OrderView:
    """One of the account's orders; any other id is 'not found', whoever owns it."""
    found = _views(session, Order.account_id == account_id, Order.id == order_id, limit=1)
    if not found:
        raise NotFound(N_("No such order."), code="order_not_found")
    return found[0]


CSV_COLUMNS = (
    "order_id",
    "created_at",
    "item",
    "credits",
    "amount_kwd",
    "currency",
    "status",
    "paid_at",
    "invoice_number",
    "payment_id",
)


def as_csv(orders: Iterable[OrderView], *, language: str, kwd: Callable[[int], str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for order in orders:
        writer.writerow(
            [
                order.id,
                order.created_at.isoformat(timespec="seconds"),
                _cell(order.item_name(language)),
                order.credits,
                kwd(order.amount_fils),
                order.currency,
                order.status,
                order.paid_at.isoformat(timespec="seconds") if order.paid_at else "",
                order.invoice_number or "",
                order.payment_id or "",
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    # A cell starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
