from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from schema.db import Base, UTCDateTime
from schema.models._time import utcnow


class CloudBudgetDay(Base):
    """High-water mark of the day's cloud counter, so a Redis restart cannot reset it."""

    __tablename__ = "cloud_budget_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AdminAlert(Base):
    """An event for platform admins (delivered by the notifications work), once per key."""

    __tablename__ = "admin_alerts"
    __table_args__ = (UniqueConstraint("kind", "day", name="uq_admin_alerts_kind_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
