from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from schema.db import Base, UTCDateTime
from schema.models._time import utcnow


class CreditEntry(Base):
    """One row per change of a balance: balance == sum(amount) for every account.

    kind: grant | reserve | refund | purchase | adjust. A request has at most one
    `reserve` and one `refund` row (unique per request), which makes settling idempotent.
    A `reserve` of 0 is a void one: the api gave up waiting for the request's reservation,
    which was then found not made, and can no longer be (`ledger.settle`).
    """

    __tablename__ = "credit_ledger"
    __table_args__ = (
        Index(
            "uq_credit_ledger_request_kind",
            "request_id",
            "kind",
            unique=True,
            postgresql_where=text("request_id IS NOT NULL"),
            sqlite_where=text("request_id IS NOT NULL"),
        ),
        # The dashboard's "total granted" sums one account's grants and purchases
        # without reading its reserve and refund rows (one per request).
        Index("ix_credit_ledger_account_kind", "account_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
