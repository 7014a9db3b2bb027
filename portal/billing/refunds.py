"""Refunding a paid order, in part or in full, through MyFatoorah (an admin's action).

MakeRefund takes no idempotency key, so the amount is claimed on the order first with
one conditional UPDATE (never more than was paid, whatever races), then requested; if
MyFatoorah refuses or cannot be reached the claim is given back. Credits are not taken
back here: whether the customer keeps them is the admin's separate decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.billing.myfatoorah import MyFatoorahClient, MyFatoorahError
from portal.exceptions import InvalidRequest, NotFound, ServiceUnavailable
from schema import audit
from schema.models import Order


@dataclass(frozen=True)
class Refunded:
    order_id: int
    amount_fils: int
    refunded_fils: int  # in total, this one included
    refund_id: str
    refund_reference: str


def _claim(session: Session, *, order_id: int, amount_fils: int | None) -> tuple[str, int, int]:
    """(invoice id, amount claimed, refunded before) or a clear error."""
    order = session.execute(
        select(
            Order.status, Order.amount_fils, Order.refunded_fils, Order.gateway_invoice_id
        ).where(Order.id == order_id)
    ).first()
    if order is None:
        raise NotFound(f"No order {order_id}.", code="order_not_found")
    status, paid, refunded, invoice_id = order
    if status != "paid" or invoice_id is None:
        raise InvalidRequest(f"Order {order_id} is not paid.", code="order_not_paid")
    amount = paid - refunded if amount_fils is None else amount_fils
    claimed = None
    if amount > 0:
        claimed = session.execute(
            update(Order)
            .where(
                Order.id == order_id,
                Order.status == "paid",
                Order.refunded_fils + amount <= Order.amount_fils,
            )
            .values(refunded_fils=Order.refunded_fils + amount)
            .returning(Order.refunded_fils)
        ).first()
    if claimed is None:
        raise InvalidRequest(
            f"At most {paid - refunded} fils of order {order_id} can still be refunded.",
            code="refund_too_large",
            param="amount_fils",
        )
    return invoice_id, amount, claimed[0] - amount


def refund_order(
    sessions: sessionmaker[Session],
    client: MyFatoorahClient,
    *,
    order_id: int,
    amount_fils: int | None,
    comment: str,
    actor: str,
) -> Refunded:
    """Blocking: the database, then MyFatoorah, then the database again."""
    with sessions() as session, session.begin():
        invoice_id, amount, before = _claim(session, order_id=order_id, amount_fils=amount_fils)
    try:
        refund = client.make_refund(
            invoice_id=invoice_id,
            amount_fils=amount,
            comment=comment,
            external_id=f"order-{order_id}-{before}",
        )
    except MyFatoorahError as error:
        with sessions() as session, session.begin():
            session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(refunded_fils=Order.refunded_fils - amount)
            )
        raise ServiceUnavailable(
            f"MyFatoorah did not accept the refund: {error}", code="refund_failed"
        ) from error
    with sessions() as session, session.begin():
        audit.record(
            session,
            actor=actor,
            action="order.refunded",
            target_type="order",
            target_id=order_id,
            details={"amount_fils": amount, "refund_id": refund.refund_id},
        )
    return Refunded(order_id, amount, before + amount, refund.refund_id, refund.refund_reference)
