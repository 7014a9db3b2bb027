"""What customers buy (plans and top-up packs), their orders, invoices and billing events.

An order moves  created -> pending -> paid  (or failed / expired; a later successful
payment still makes a failed order paid: MyFatoorah's SUCCESS overrides every other
status). `paid` is final and reached once: the fulfilling UPDATE is conditional on the
order not being paid yet, and the invoice and the ledger row are unique per order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from schema.db import Base, UTCDateTime
from schema.models._time import utcnow


class TopUpPack(Base):
    __tablename__ = "topup_packs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_en: Mapped[str] = mapped_column(String(64))
    name_ar: Mapped[str] = mapped_column(String(64))
    credits: Mapped[int] = mapped_column(Integer)
    price_fils: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_account_created", "account_id", "created_at"),
        Index("ix_orders_status_check", "status", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # "plan" | "pack"
    item_code: Mapped[str] = mapped_column(String(32))
    # What was bought, as it was at the time of the order (prices are data and change).
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True)
    credits: Mapped[int] = mapped_column(Integer)
    period_days: Mapped[int] = mapped_column(Integer, default=0)
    amount_fils: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="KWD")
    language: Mapped[str] = mapped_column(String(2), default="en")
    status: Mapped[str] = mapped_column(String(16), default="created")
    gateway_invoice_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    payment_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    payment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payment_method: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The reconciliation job looks at unsettled orders again from this moment.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    check_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_fils: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(Base):
    """Our invoice for a paid order; numbers are sequential over paid orders only."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    amount_fils: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def number(self) -> str:
        return invoice_number(self.id)


INVOICE_PREFIX = "INV-"


def invoice_number(invoice_id: int) -> str:
    return f"{INVOICE_PREFIX}{invoice_id:06d}"


def invoice_id_of(number: str) -> int | None:
    digits = number.removeprefix(INVOICE_PREFIX)
    if number == digits or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits)


class PaymentNotice(Base):
    """Every callback and webhook received, once: duplicates hit the unique key."""

    __tablename__ = "payment_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # callback | webhook_v1 | webhook_v2
    gateway_invoice_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payment_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BillingEvent(Base):
    """A fact for the notifications work to act on: subscription activated, top-up
    purchased, expiry approaching, subscription expired. Each happens once per key."""

    __tablename__ = "billing_events"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_billing_events_dedupe_key"),
        Index("ix_billing_events_account", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    dedupe_key: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
