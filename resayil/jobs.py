"""Background jobs run by the RQ worker; enqueued by dotted path."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.billing import subscriptions
from portal.billing.gateway import payments_client
from portal.billing.reconcile import Reconciled, reconcile
from portal.config import PortalSettings, load_settings
from schema.db import make_engine, make_session_factory
from schema.models import Account, CreditEntry
from schema.models._time import utcnow

log = logging.getLogger(__name__)


@contextmanager
def _database(settings: PortalSettings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def reconcile_ledger() -> list[int]:
    """Accounts whose balance differs from the sum of their ledger (should be none)."""
    with _database(load_settings()) as sessions, sessions() as session:
        sums = (
            select(CreditEntry.account_id, func.sum(CreditEntry.amount).label("total"))
            .group_by(CreditEntry.account_id)
            .subquery()
        )
        rows = session.execute(
            select(Account.id, Account.credit_balance, sums.c.total).outerjoin(
                sums, sums.c.account_id == Account.id
            )
        ).all()
    broken = [account_id for account_id, balance, total in rows if balance != (total or 0)]
    for account_id in broken:
        log.error("ledger mismatch for account %s", account_id)
    return broken


def reconcile_payments() -> Reconciled | None:
    """Ask MyFatoorah again about orders that nobody confirmed (see portal.billing.reconcile)."""
    settings = load_settings()
    client = payments_client(settings)
    if client is None:
        return None
    try:
        with _database(settings) as sessions:
            done = reconcile(sessions, client, recheck_after=settings.payment_recheck)
    finally:
        client.close()
    log.info(
        "payments reconciled: %d checked, %d unreachable, %d expired",
        done.checked,
        done.unreachable,
        done.expired,
    )
    return done


def announce_plan_endings() -> int:
    """Record "ends soon" and "ended" events for subscriptions (once each)."""
    settings = load_settings()
    with _database(settings) as sessions, sessions() as session, session.begin():
        return subscriptions.sweep(session, now=utcnow(), notice=settings.expiry_notice)
