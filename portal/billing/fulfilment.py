"""Giving the customer what they paid for, exactly once per order.

`fulfil` starts with one conditional UPDATE (`status <> 'paid'`): of any number of
concurrent confirmations only one gets the row back; PostgreSQL makes the others
wait on the row lock and then re-check the condition. The credits (ledger row unique
per order), the invoice (unique per order) and the event (unique key) back that up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.billing import events
from schema import ledger
from schema.models import Account, Invoice, Order

SETTLED = ("paid", "review")


@dataclass(frozen=True)
class Fulfilled:
    order_id: int
    account_id: int
    invoice_number: str
    plan_expires_at: datetime | None


def fulfil(
    session: Session, *, order_id: int, payment_id: str, payment_method: str, now: datetime
) -> Fulfilled | None:
    """Mark the order paid and deliver it; None if it was already paid. Caller commits."""
    order = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.not_in(SETTLED))
        .values(
            status="paid",
            paid_at=now,
            payment_id=payment_id,
            payment_method=payment_method[:32],
            failure_code=None,
            next_check_at=None,
        )
        .returning(
            Order.account_id,
            Order.kind,
            Order.plan_id,
            Order.credits,
            Order.period_days,
            Order.amount_fils,
        )
    ).first()
    if order is None:
        return None
    account_id, kind, plan_id, credits, period_days, amount_fils = order
    ledger.grant(
        session,
        account_id=account_id,
        amount=credits,
        kind="purchase",
        reason=f"order {order_id}",
        reference=f"order:{order_id}",
    )
    ends = None
    if kind == "plan" and plan_id is not None:
        ends, renewed = _extend_plan(
            session, account_id=account_id, plan_id=plan_id, days=period_days, now=now
        )
        kind_of_event = "subscription_renewed" if renewed else "subscription_activated"
    else:
        kind_of_event = "topup_purchased"
    invoice = Invoice(
        order_id=order_id,
        account_id=account_id,
        amount_fils=amount_fils,
        issued_at=now,
    )
    session.add(invoice)
    session.flush()
    events.emit(
        session,
        account_id=account_id,
        kind=kind_of_event,
        dedupe_key=f"order:{order_id}",
        order_id=order_id,
        details={
            "credits": credits,
            "invoice": invoice.number,
            "plan_expires_at": ends.isoformat() if ends else None,
        },
    )
    return Fulfilled(order_id, account_id, invoice.number, ends)


def _extend_plan(
    session: Session, *, account_id: int, plan_id: int, days: int, now: datetime
) -> tuple[datetime, bool]:
    """The same plan before it ends is a renewal: the period extends from its end.

    Another plan (or an ended one) starts a fresh period now. The ledger grant above
    already holds the account row's lock, so this read-then-write cannot interleave.
    """
    current_plan, current_end = session.execute(
        select(Account.plan_id, Account.plan_expires_at).where(Account.id == account_id)
    ).one()
    renewed = current_plan == plan_id and current_end is not None and current_end > now
    start = current_end if renewed and current_end is not None else now
    ends = start + timedelta(days=days)
    session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(plan_id=plan_id, plan_expires_at=ends)
    )
    return ends, renewed


def mark_failed(
    session: Session, *, order_id: int, failure_code: str, retry_at: datetime | None
) -> bool:
    """A failed attempt; never touches a paid order (a later success may still come)."""
    changed = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(("created", "pending", "failed")))
        .values(status="failed", failure_code=failure_code[:32], next_check_at=retry_at)
        .returning(Order.id)
    ).first()
    return changed is not None


def hold_for_review(session: Session, *, order_id: int, reason: str) -> bool:
    """Paid at MyFatoorah but not as ordered (amount, currency, reference): no credits.

    True the first time, so the admins are alerted once."""
    held = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.not_in(SETTLED))
        .values(status="review", failure_code=reason[:32], next_check_at=None)
        .returning(Order.id)
    ).first()
    return held is not None
