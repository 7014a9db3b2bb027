"""What the public pages offer: plans with their prices and visible models, and top-up packs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from schema.models import CatalogModel, Plan, PlanModel, Price, TopUpPack


@dataclass(frozen=True)
class ModelOffer:
    name: str
    pool: str


@dataclass(frozen=True)
class PlanOffer:
    code: str
    name_en: str
    name_ar: str
    monthly_price_fils: int
    credits_per_period: int
    requests_per_minute: int
    tier: int
    models: tuple[ModelOffer, ...]
    period_days: int = 30

    def name(self, language: str) -> str:
        return self.name_ar if language == "ar" else self.name_en

    @property
    def for_sale(self) -> bool:
        return self.monthly_price_fils > 0


@dataclass(frozen=True)
class PackOffer:
    code: str
    name_en: str
    name_ar: str
    credits: int
    price_fils: int

    def name(self, language: str) -> str:
        return self.name_ar if language == "ar" else self.name_en


@dataclass(frozen=True)
class Offers:
    plans: tuple[PlanOffer, ...]
    credits_per_request: dict[str, int]
    packs: tuple[PackOffer, ...] = ()


def current_offers(session: Session) -> Offers:
    """Plans in their sort order, each with its visible models (hidden ones never shown)."""
    models: dict[int, list[ModelOffer]] = {}
    for plan_id, name, pool in session.execute(
        select(PlanModel.plan_id, CatalogModel.name, CatalogModel.pool)
        .join(CatalogModel, CatalogModel.name == PlanModel.model_name)
        .where(CatalogModel.hidden.is_(False))
        .order_by(CatalogModel.pool.desc(), CatalogModel.name)
    ):
        models.setdefault(plan_id, []).append(ModelOffer(name, pool))
    plans = tuple(
        PlanOffer(
            plan.code,
            plan.name_en,
            plan.name_ar,
            plan.monthly_price_fils,
            plan.credits_per_period,
            plan.requests_per_minute,
            plan.tier,
            tuple(models.get(plan.id, [])),
            plan.period_days,
        )
        for plan in session.scalars(select(Plan).order_by(Plan.sort_order, Plan.tier))
    )
    prices = {price.pool: price.credits_per_request for price in session.scalars(select(Price))}
    packs = tuple(
        PackOffer(pack.code, pack.name_en, pack.name_ar, pack.credits, pack.price_fils)
        for pack in session.scalars(
            select(TopUpPack).where(TopUpPack.active.is_(True)).order_by(TopUpPack.sort_order)
        )
    )
    return Offers(plans, prices, packs)
