"""The billing JSON API's bodies. Money is integer fils plus the KWD text with 3 decimals."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from portal.billing.history import OrderView
from portal.billing.subscriptions import Subscription
from portal.catalog.offers import PackOffer, PlanOffer
from portal.web.rendering import kwd


class PlanForSale(BaseModel):
    item: str = Field(description="What to send as `item` to buy it, e.g. `plan:pro`")
    code: str
    name_en: str
    name_ar: str
    price_fils: int
    price_kwd: str = Field(description="The price in KWD with 3 decimals, e.g. `15.000`")
    credits_per_period: int
    period_days: int
    requests_per_minute: int
    priority: int = Field(description="Queue priority: higher is served first")
    models: list[str]

    @classmethod
    def of(cls, plan: PlanOffer) -> PlanForSale:
        return cls(
            item=f"plan:{plan.code}",
            code=plan.code,
            name_en=plan.name_en,
            name_ar=plan.name_ar,
            price_fils=plan.monthly_price_fils,
            price_kwd=kwd(plan.monthly_price_fils),
            credits_per_period=plan.credits_per_period,
            period_days=plan.period_days,
            requests_per_minute=plan.requests_per_minute,
            priority=plan.tier,
            models=[model.name for model in plan.models],
        )


class PackForSale(BaseModel):
    item: str = Field(description="What to send as `item` to buy it, e.g. `pack:15k`")
    code: str
    name_en: str
    name_ar: str
    credits: int
    price_fils: int
    price_kwd: str

    @classmethod
    def of(cls, pack: PackOffer) -> PackForSale:
        return cls(
            item=f"pack:{pack.code}",
            code=pack.code,
            name_en=pack.name_en,
            name_ar=pack.name_ar,
            credits=pack.credits,
            price_fils=pack.price_fils,
            price_kwd=kwd(pack.price_fils),
        )


class OffersOut(BaseModel):
    plans: list[PlanForSale]
    packs: list[PackForSale]


class SubscriptionOut(BaseModel):
    plan: str | None
    status: Literal["active", "ending", "expired", "none", "open_ended"] = Field(
        description="`ending`: ends within the notice period; `open_ended`: has no end date"
    )
    expires_at: datetime | None

    @classmethod
    def of(cls, subscription: Subscription) -> SubscriptionOut:
        return cls(
            plan=subscription.plan_code,
            status=subscription.status,
            expires_at=subscription.expires_at,
        )


class OrderIn(BaseModel):
    item: str = Field(
        min_length=1, max_length=40, description="`plan:<code>` or `pack:<code>` from /offers"
    )


class CheckoutOut(BaseModel):
    order_id: int
    payment_url: str = Field(description="Send the customer here to pay (MyFatoorah's page)")


class OrderOut(BaseModel):
    id: int
    kind: Literal["plan", "pack"]
    item: str
    credits: int
    period_days: int
    amount_fils: int
    amount_kwd: str
    currency: str
    status: Literal["created", "pending", "paid", "failed", "expired", "review"]
    failure_code: str | None
    failure_message: str | None
    payment_url: str | None = Field(description="Set while the order can still be paid")
    created_at: datetime
    paid_at: datetime | None
    invoice_number: str | None

    @classmethod
    def of(cls, order: OrderView) -> OrderOut:
        return cls(
            id=order.id,
            kind=order.kind,
            item=f"{order.kind}:{order.item_code}",
            credits=order.credits,
            period_days=order.period_days,
            amount_fils=order.amount_fils,
            amount_kwd=kwd(order.amount_fils),
            currency=order.currency,
            status=order.status,
            failure_code=order.failure_code,
            failure_message=order.failure_message,
            payment_url=order.payment_url if order.payable else None,
            created_at=order.created_at,
            paid_at=order.paid_at,
            invoice_number=order.invoice_number,
        )


class WebhookOut(BaseModel):
    received: bool = True
    duplicate: bool
