"""Background jobs run by the RQ worker; enqueued by dotted path."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from portal.config import load_settings
from schema.db import make_engine, make_session_factory
from schema.models import Account, CreditEntry

log = logging.getLogger(__name__)


def reconcile_ledger() -> list[int]:
    """Accounts whose balance differs from the sum of their ledger (should be none)."""
    engine = make_engine(load_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
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
    finally:
        engine.dispose()
    broken = [account_id for account_id, balance, total in rows if balance != (total or 0)]
    for account_id in broken:
        log.error("ledger mismatch for account %s", account_id)
    return broken
