"""The reconciliation job: asks MyFatoorah again about orders nobody confirmed.

A callback that could not reach MyFatoorah, a webhook that never came, or a failed
attempt that the customer retried on the same invoice: every unsettled order is looked
at again from its `next_check_at`, less often each time, until its invoice expires.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.billing.confirmation import Outcome, confirm
from portal.billing.myfatoorah import GatewayRejected, MyFatoorahClient, MyFatoorahError
from schema.models import Order
from schema.models._time import utcnow

log = logging.getLogger(__name__)

INVOICE_LIFETIME = timedelta(days=3)
MAX_BACKOFF = timedelta(hours=1)
BATCH = 100
UNSETTLED = ("created", "pending", "failed")


@dataclass(frozen=True)
class Reconciled:
    checked: int
    outcomes: tuple[Outcome, ...]
    unreachable: int
    expired: int


def due_orders(session: Session, *, now: datetime) -> list[tuple[int, str | None, int]]:
    rows = session.execute(
        select(Order.id, Order.gateway_invoice_id, Order.check_attempts)
        .where(
            Order.status.in_(UNSETTLED),
            Order.next_check_at.is_not(None),
            Order.next_check_at <= now,
            Order.created_at > now - INVOICE_LIFETIME,
        )
        .order_by(Order.next_check_at)
        .limit(BATCH)
    ).all()
    return [(order_id, invoice_id, attempts) for order_id, invoice_id, attempts in rows]


def expire_stale(session: Session, *, now: datetime) -> int:
    """Orders whose invoice can no longer be paid: pending ones become expired."""
    result = session.execute(
        update(Order)
        .where(
            Order.status.in_(("created", "pending")),
            Order.created_at <= now - INVOICE_LIFETIME,
        )
        .values(status="expired", next_check_at=None)
        .returning(Order.id)
    )
    return len(result.all())


def _postpone(
    session: Session, order_id: int, attempts: int, *, now: datetime, base: timedelta
) -> None:
    delay = min(base * (2 ** min(attempts, 12)), MAX_BACKOFF)
    session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(UNSETTLED))
        .values(next_check_at=now + delay, check_attempts=attempts + 1)
    )


def reconcile(
    sessions: sessionmaker[Session], client: MyFatoorahClient, *, recheck_after: timedelta
) -> Reconciled:
    now = utcnow()
    with sessions() as session, session.begin():
        due = due_orders(session, now=now)
        expired = expire_stale(session, now=now)
    outcomes: list[Outcome] = []
    unreachable = 0
    for order_id, invoice_id, attempts in due:
        key, key_type = (
            (invoice_id, "InvoiceId") if invoice_id else (str(order_id), "CustomerReference")
        )
        try:
            outcomes.append(
                confirm(sessions, client, key=key, key_type=key_type, recheck_after=recheck_after)
            )
        except GatewayRejected as error:
            # No such invoice (the order never got one): nothing can be paid on it.
            log.info("order %s: MyFatoorah has no invoice (%s)", order_id, error)
            if invoice_id is None:
                with sessions() as session, session.begin():
                    session.execute(
                        update(Order)
                        .where(
                            Order.id == order_id,
                            Order.status.in_(("created", "failed")),
                            Order.gateway_invoice_id.is_(None),
                        )
                        .values(status="failed", failure_code="gateway_error", next_check_at=None)
                    )
                continue
        except MyFatoorahError as error:
            unreachable += 1
            log.warning("order %s: MyFatoorah unreachable (%s)", order_id, error)
        with sessions() as session, session.begin():
            _postpone(session, order_id, attempts, now=now, base=recheck_after)
    return Reconciled(len(due), tuple(outcomes), unreachable, expired)
