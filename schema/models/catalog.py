"""Plans, models and prices: data an admin can change, seeded by the first migration."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from schema.db import Base


class Plan(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_en: Mapped[str] = mapped_column(String(64))
    name_ar: Mapped[str] = mapped_column(String(64))
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    # Higher tier is served first from the queue (Enterprise 3 > Pro 2 > Basic 1).
    tier: Mapped[int] = mapped_column(Integer)
    monthly_price_fils: Mapped[int] = mapped_column(Integer, default=0)
    credits_per_period: Mapped[int] = mapped_column(Integer, default=0)
    period_days: Mapped[int] = mapped_column(Integer, default=30)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class CatalogModel(Base):
    """A model the gateway knows. Hidden ones answer exactly like unknown ones."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    pool: Mapped[str] = mapped_column(String(8))  # "local" | "cloud"
    upstream_name: Mapped[str] = mapped_column(String(128))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    cloud_fallback: Mapped[str | None] = mapped_column(String(128), nullable=True)
    owned_by: Mapped[str] = mapped_column(String(64), default="resayil")
    created: Mapped[int] = mapped_column(Integer, default=0)


class PlanModel(Base):
    __tablename__ = "plan_models"

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    model_name: Mapped[str] = mapped_column(
        ForeignKey("models.name", ondelete="CASCADE"), primary_key=True
    )


class Price(Base):
    """Credits per request by pool. Per-token columns let token pricing be added as data."""

    __tablename__ = "prices"

    pool: Mapped[str] = mapped_column(String(8), primary_key=True)
    credits_per_request: Mapped[int] = mapped_column(Integer)
    credits_per_1k_prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    credits_per_1k_completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
