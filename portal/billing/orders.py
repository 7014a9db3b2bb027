"""Placing an order: what is bought, at today's price, and its invoice at MyFatoorah.

The order row is committed before MyFatoorah is called, and MyFatoorah is called once
per order: its create endpoints take no idempotency key, so a retry would make a
second invoice. An order whose invoice could not be made is marked failed; the
customer simply orders again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.billing.myfatoorah import MyFatoorahClient, MyFatoorahError
from portal.exceptions import InvalidRequest, NotFound, ServiceUnavailable
from portal.translatable import N_
from schema.models import Order, Plan, TopUpPack, User
from schema.money import kwd_number

ITEM = re.compile(r"^(plan|pack):([a-z0-9_-]{1,32})$")
# MyFatoorah strips everything but letters, digits and spaces from the name.
_NAME_JUNK = re.compile(r"[^\w\s]|_", re.UNICODE)


@dataclass(frozen=True)
class Product:
    kind: str  # "plan" | "pack"
    code: str
    name_en: str
    name_ar: str
    credits: int
    period_days: int
    price_fils: int
    plan_id: int | None


@dataclass(frozen=True)
class Checkout:
    order_id: int
    payment_url: str


def find_product(session: Session, *, item: str) -> Product:
    """`plan:<code>` or `pack:<code>`: something for sale now."""
    match = ITEM.match(item.strip().lower())
    if match is None:
        raise InvalidRequest(
            N_("Choose a plan or a credit pack."), param="item", code="invalid_item"
        )
    kind, code = match.groups()
    if kind == "plan":
        plan = session.scalar(select(Plan).where(Plan.code == code, Plan.monthly_price_fils > 0))
        if plan is not None:
            return Product(
                "plan",
                plan.code,
                plan.name_en,
                plan.name_ar,
                plan.credits_per_period,
                plan.period_days,
                plan.monthly_price_fils,
                plan.id,
            )
    else:
        pack = session.scalar(
            select(TopUpPack).where(TopUpPack.code == code, TopUpPack.active.is_(True))
        )
        if pack is not None:
            return Product(
                "pack",
                pack.code,
                pack.name_en,
                pack.name_ar,
                pack.credits,
                0,
                pack.price_fils,
                None,
            )
    raise NotFound(N_("That plan or pack is not for sale."), param="item", code="item_not_found")


def create_order(
    session: Session,
    *,
    account_id: int,
    user_id: int,
    product: Product,
    language: str,
    check_at: datetime | None = None,
) -> Order:
    order = Order(
        account_id=account_id,
        user_id=user_id,
        kind=product.kind,
        item_code=product.code,
        plan_id=product.plan_id,
        credits=product.credits,
        period_days=product.period_days,
        amount_fils=product.price_fils,
        language=language,
        status="created",
        # If we stop before MyFatoorah answers, the reconciliation job looks it up.
        next_check_at=check_at,
    )
    session.add(order)
    session.flush()
    return order


def invoice_request(
    *, order: Order, product: Product, customer: User, public_base_url: str
) -> dict[str, object]:
    """The SendPayment fields for an order of `product`: our order id as CustomerReference."""
    base = public_base_url.rstrip("/")
    back = f"{base}/billing/callback?{urlencode({'order': order.id})}"
    fields: dict[str, object] = {
        "CustomerName": _customer_name(customer.email),
        "CustomerEmail": customer.email,
        "CustomerReference": str(order.id),
        "UserDefinedField": str(order.account_id),
        "Language": "ar" if order.language == "ar" else "en",
        "DisplayCurrencyIso": order.currency,
        "CallBackUrl": back,
        "ErrorUrl": back,
        "InvoiceItems": [
            {
                "ItemName": product.name_ar if order.language == "ar" else product.name_en,
                "Quantity": 1,
                "UnitPrice": kwd_number(order.amount_fils),
            }
        ],
    }
    fields.update(_mobile(customer.phone))
    return fields


def _customer_name(email: str) -> str:
    name = _NAME_JUNK.sub(" ", email.split("@", 1)[0])
    return " ".join(name.split())[:50] or "Customer"


def _mobile(phone: str) -> dict[str, str]:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return {}
    national = str(number.national_number)
    if len(national) > 11:
        return {}
    return {"MobileCountryCode": f"+{number.country_code}", "CustomerMobile": national}


def check_out(
    sessions: sessionmaker[Session],
    client: MyFatoorahClient | None,
    *,
    account_id: int,
    user_id: int,
    item: str,
    language: str,
    public_base_url: str,
    recheck_after: timedelta,
) -> Checkout:
    """Order, then invoice; returns where to send the customer to pay. Blocking."""
    if client is None:
        raise ServiceUnavailable(
            N_("Online payment is not available right now. Please try again later."),
            code="payments_unavailable",
        )
    with sessions() as session, session.begin():
        product = find_product(session, item=item)
        order = create_order(
            session,
            account_id=account_id,
            user_id=user_id,
            product=product,
            language=language,
            check_at=datetime.now(UTC) + recheck_after,
        )
        fields = invoice_request(
            order=order,
            product=product,
            customer=session.get_one(User, user_id),
            public_base_url=public_base_url,
        )
        order_id, amount = order.id, order.amount_fils
    try:
        created = client.send_payment(invoice=fields, amount_fils=amount)
    except MyFatoorahError as error:
        with sessions() as session, session.begin():
            session.execute(
                update(Order)
                .where(Order.id == order_id, Order.status == "created")
                .values(status="failed", failure_code="gateway_error")
            )
        raise ServiceUnavailable(
            N_("The payment service could not be reached. Nothing was charged; please retry."),
            code="payment_gateway_error",
            headers={"retry-after": "30"},
        ) from error
    with sessions() as session, session.begin():
        session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == "created")
            .values(
                status="pending",
                gateway_invoice_id=created.invoice_id,
                payment_url=created.payment_url,
                next_check_at=datetime.now(UTC) + recheck_after,
            )
        )
    return Checkout(order_id, created.payment_url)
