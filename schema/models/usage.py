from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from schema.db import Base, UTCDateTime
from schema.models._time import utcnow


class UsageRecord(Base):
    """Exactly one row per admitted request: its settlement."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True, index=True
    )
    model_requested: Mapped[str] = mapped_column(String(128))
    model_served: Mapped[str] = mapped_column(String(128))
    pool: Mapped[str] = mapped_column(String(8))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    credits_charged: Mapped[int] = mapped_column(Integer, default=0)
    queue_wait_ms: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # ok | error | cancelled
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UsageHourly(Base):
    """Usage summed per account, UTC hour, key, requested model and pool.

    Written by `schema.usage_rollup` in the settling transaction; dashboards read this,
    never the raw rows. `api_key_id` 0 stands for requests without a key, and it has no
    foreign key: a rollup outlives the key (and the raw rows) it counts.
    """

    __tablename__ = "usage_hourly"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    api_key_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    pool: Mapped[str] = mapped_column(String(8), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    credits: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageHourlyTotal(Base):
    """Usage summed per account and UTC hour, all its keys, models and pools together.

    The dashboard's time series read this: at most 8,784 rows per account and year, however
    many keys and models the account uses. Written with `UsageHourly`, by the same code.
    Not a daily table: days in UTC are not Kuwait's days, and days keyed by a local date
    would tie the data to one time zone at write time; hours serve any report zone whose
    offset is whole hours, exactly.
    """

    __tablename__ = "usage_hourly_totals"
    __table_args__ = (
        # Every column: a year of one account's series is read from the index alone
        # (index-only in PostgreSQL, covering in SQLite), not from 8,784 scattered rows.
        Index(
            "ix_usage_hourly_totals_covering",
            "account_id",
            "hour",
            "requests",
            "failed",
            "prompt_tokens",
            "completion_tokens",
            "credits",
        ),
    )

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
