"""Billing events as records: what the notifications work tells the customer about.

Kinds: subscription_activated, subscription_renewed, topup_purchased,
subscription_expiring, subscription_expired. Each is recorded once per dedupe key
(the order, or the account and the end date it is about), however often it is emitted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from schema.db import upsert_insert
from schema.models import BillingEvent

KINDS = frozenset(
    {
        "subscription_activated",
        "subscription_renewed",
        "topup_purchased",
        "subscription_expiring",
        "subscription_expired",
    }
)


def emit(
    session: Session,
    *,
    account_id: int,
    kind: str,
    dedupe_key: str,
    order_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Record the event unless one with this key exists; True if it is new."""
    if kind not in KINDS:
        raise ValueError(f"unknown billing event {kind!r}")
    insert = upsert_insert(session)
    added = session.execute(
        insert(BillingEvent)
        .values(
            account_id=account_id,
            kind=kind,
            dedupe_key=dedupe_key,
            order_id=order_id,
            details=details or {},
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(BillingEvent.id)
    ).first()
    return added is not None
