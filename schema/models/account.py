"""Accounts pay; users log in. An account has an owner and, for Enterprise, members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from schema.db import Base, UTCDateTime
from schema.models._time import utcnow


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("credit_balance >= 0", name="balance_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"), nullable=True)
    # The paid period ends here; None = no end (a plan given by an operator). An expired
    # account keeps plan_id (so it can be renewed) but the API treats it as having none.
    plan_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    credit_balance: Mapped[int] = mapped_column(Integer, default=0)
    # None: the plan's limit applies; 0: unlimited (negotiated or load test).
    rpm_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(2), default="en")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))  # "owner" | "admin" | "member"
