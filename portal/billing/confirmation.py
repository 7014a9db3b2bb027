"""Confirming a payment with MyFatoorah before believing it.

A redirect or a webhook only says "look at invoice X"; what counts is GetPaymentStatus,
checked against our order: the invoice id, our order id as CustomerReference, the
amount in fils and the currency. A success is final and overrides any failure seen
before; a failure never undoes a success.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from portal.billing import fulfilment
from portal.billing.myfatoorah import (
    GatewayUnreachable,
    MyFatoorahClient,
    MyFatoorahError,
    PaymentStatus,
)
from schema.models import AdminAlert, Order
from schema.models._time import utcnow
from schema.money import fils_of

log = logging.getLogger(__name__)

KWD_NAMES = ("KWD", "KD", "د.ك")


@dataclass(frozen=True)
class Outcome:
    order_id: int | None
    account_id: int | None
    status: str  # paid | failed | pending | review | unknown
    newly_paid: bool = False


def find_order(session: Session, payment: PaymentStatus) -> Order | None:
    """Our order for MyFatoorah's invoice: by invoice id, else by our reference."""
    order = session.scalar(select(Order).where(Order.gateway_invoice_id == payment.invoice_id))
    if order is not None or not payment.customer_reference.isdigit():
        return order
    # The invoice may have been made while we lost the answer: adopt it by reference.
    return session.scalar(
        select(Order).where(
            Order.id == int(payment.customer_reference),
            or_(
                Order.gateway_invoice_id.is_(None),
                Order.gateway_invoice_id == payment.invoice_id,
            ),
        )
    )


def mismatch(order: Order, payment: PaymentStatus) -> str | None:
    """Why a paid invoice is not what this order asked for, or None if it is."""
    if payment.customer_reference != str(order.id):
        return "reference_mismatch"
    try:
        paid = fils_of(payment.invoice_value)
    except (ValueError, ArithmeticError):
        return "amount_unreadable"
    if paid != order.amount_fils:
        return "amount_mismatch"
    display = payment.display_value.strip()
    if display and not display.upper().endswith(KWD_NAMES):
        return "currency_mismatch"
    return None


def apply_status(
    session: Session, payment: PaymentStatus, *, now: datetime, recheck_after: timedelta
) -> Outcome:
    """What MyFatoorah says, applied to our order. Caller commits."""
    order = find_order(session, payment)
    if order is None:
        log.warning("payment for unknown invoice %s ignored", payment.invoice_id)
        return Outcome(None, None, "unknown")
    if order.gateway_invoice_id is None:
        order.gateway_invoice_id = payment.invoice_id
    success = payment.successful_transaction
    if payment.paid and success is not None:
        problem = mismatch(order, payment)
        if problem is not None:
            if fulfilment.hold_for_review(session, order_id=order.id, reason=problem):
                _alert(session, order.id, problem, now)
            return Outcome(order.id, order.account_id, "review")
        done = fulfilment.fulfil(
            session,
            order_id=order.id,
            payment_id=success.payment_id,
            payment_method=success.gateway,
            now=now,
        )
        status = session.scalar(select(Order.status).where(Order.id == order.id)) or "paid"
        return Outcome(order.id, order.account_id, status, newly_paid=done is not None)
    last = payment.last_transaction
    if last is not None and last.status.lower() in {"failed", "canceled"}:
        fulfilment.mark_failed(
            session,
            order_id=order.id,
            failure_code=last.error_code or "MF020",
            retry_at=now + recheck_after,
        )
    return Outcome(order.id, order.account_id, order.status)


def _alert(session: Session, order_id: int, problem: str, now: datetime) -> None:
    session.add(
        AdminAlert(
            kind=f"payment_{problem}",
            day=f"o{order_id}"[:10],
            message=f"Order {order_id} was paid at MyFatoorah but not as ordered ({problem}); "
            "no credits were given. Refund or fulfil it by hand.",
            created_at=now,
        )
    )


def confirm(
    sessions: sessionmaker[Session],
    client: MyFatoorahClient,
    *,
    key: str,
    key_type: str,
    recheck_after: timedelta,
) -> Outcome:
    """Ask MyFatoorah about a payment or invoice and apply the answer. Blocking.

    Raises GatewayUnreachable when MyFatoorah cannot answer; the order stays pending
    and the reconciliation job asks again.
    """
    payment = client.get_payment_status(key=key, key_type=key_type)
    with sessions() as session, session.begin():
        return apply_status(session, payment, now=utcnow(), recheck_after=recheck_after)


def confirm_quietly(
    sessions: sessionmaker[Session],
    client: MyFatoorahClient,
    *,
    key: str,
    key_type: str,
    recheck_after: timedelta,
) -> Outcome | None:
    """`confirm`, with MyFatoorah's errors logged and left to the reconciliation job."""
    try:
        return confirm(sessions, client, key=key, key_type=key_type, recheck_after=recheck_after)
    except GatewayUnreachable as error:
        log.warning("MyFatoorah unreachable confirming %s %s: %s", key_type, key, error)
    except MyFatoorahError as error:
        log.warning("MyFatoorah refused GetPaymentStatus for %s %s: %s", key_type, key, error)
    return None
