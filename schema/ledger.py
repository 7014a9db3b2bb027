"""Credit balance changes. Every change is one ledger row in the same transaction.

Reservation is a single conditional UPDATE, so however many requests race, a
balance never goes below zero (and the CHECK constraint backs that up).
Settlement is idempotent: the usage row is unique per request, and a refund and the
hourly rollup are written only by the transaction that inserted it. A settlement whose
reservation went unanswered is refunded only if that reservation was made; if not, it is
voided so that it never can be (`_confirm_reservations`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import (
    Insert,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schema import usage_rollup
from schema.db import UTCDateTime, upsert_insert
from schema.messages import Settlement
from schema.models import Account, CreditEntry, UsageRecord
from schema.models._time import utcnow

log = logging.getLogger(__name__)

# The reason of a void reservation: one the api gave up waiting for, found not made.
VOIDED_REASON = "reservation unanswered: voided"


class InsufficientCredits(Exception):
    def __init__(self, balance: int, price: int) -> None:
        super().__init__(f"balance {balance} is below the price {price}")
        self.balance = balance
        self.price = price


def _move(
    session: Session,
    *,
    account_id: int,
    amount: int,
    kind: str,
    request_id: str | None = None,
    reason: str = "",
    require_funds: bool = False,
) -> int | None:
    statement = (
        update(Account)
        .where(Account.id == account_id)
        .values(credit_balance=Account.credit_balance + amount)
        .returning(Account.credit_balance)
    )
    if require_funds:
        statement = statement.where(Account.credit_balance >= -amount)
    balance = session.execute(statement).scalar_one_or_none()
    if balance is None:
        return None
    session.add(
        CreditEntry(
            account_id=account_id,
            amount=amount,
            balance_after=balance,
            kind=kind,
            request_id=request_id,
            reason=reason,
        )
    )
    return balance


def reserve(session: Session, *, account_id: int, request_id: str, price: int) -> int:
    """Take `price` credits for a request; raises InsufficientCredits. Caller commits."""
    balance = _move(
        session,
        account_id=account_id,
        amount=-price,
        kind="reserve",
        request_id=request_id,
        reason="request admitted",
        require_funds=True,
    )
    if balance is None:
        current = session.execute(balance_statement(), {"account_id": account_id}).scalar_one()
        raise InsufficientCredits(current, price)
    return balance


def reserve_statement() -> Insert:
    """`reserve` as one PostgreSQL statement, for an autocommit connection.

    Bind parameters: `account_id`, `request_id`, `price`. It returns the new balance,
    or no row when the account lacks the credits. The account row stays locked only
    while the statement runs, not across round trips to the client, so concurrent
    requests of one account do not queue behind each other's commits.
    """
    price = bindparam("price", type_=Integer)
    moved = (
        update(Account)
        .where(
            Account.id == bindparam("account_id", type_=Integer), Account.credit_balance >= price
        )
        .values(credit_balance=Account.credit_balance - price)
        .returning(Account.id, Account.credit_balance)
        .cte("moved")
    )
    return (
        insert(CreditEntry)
        .from_select(
            ["account_id", "amount", "balance_after", "kind", "request_id", "reason", "created_at"],
            select(
                moved.c.id,
                -price,
                moved.c.credit_balance,
                literal("reserve"),
                bindparam("request_id", type_=String),
                literal("request admitted"),
                func.now(),
            ),
        )
        .returning(CreditEntry.balance_after)
    )


# `reserve` for many requests in one PostgreSQL statement, for an autocommit connection.
# Parameters: `accounts`, `requests`, `prices`, arrays in the order the requests asked.
# Each account's requests are taken in that order while its balance covers them (so
# with one price per account, exactly as many as it covers, as one by one); a request
# that has a `reserve` row already (a retry, or one voided by an unconfirmed settlement)
# takes nothing again. The accounts' rows are locked in id order, only while it runs.
# One row per request: `reserved` (its ledger row is in), `already`, and the balance
# (after its reservation, or the account's after the statement).
RESERVE_MANY_SQL = """
WITH asked AS (
    SELECT * FROM unnest(%(accounts)s::int[], %(requests)s::text[], %(prices)s::int[])
        WITH ORDINALITY AS asked(account_id, request_id, price, ordinal)
), known AS (  -- by the unique (request_id, kind) index, whatever the ledger's size
    SELECT request_id FROM credit_ledger
    WHERE request_id IS NOT NULL  -- the index's own condition: it must be said to use it
      AND request_id = ANY(%(requests)s::varchar[]) AND kind = 'reserve'
), fresh AS (
    SELECT asked.* FROM asked WHERE asked.request_id NOT IN (SELECT request_id FROM known)
), locked AS (
    SELECT id, credit_balance FROM accounts
    WHERE id IN (SELECT account_id FROM fresh)
    ORDER BY id FOR UPDATE
), taken AS (
    SELECT * FROM (
        SELECT fresh.*, locked.credit_balance - sum(fresh.price) OVER (
            PARTITION BY fresh.account_id ORDER BY fresh.ordinal
        ) AS balance_after
        FROM fresh JOIN locked ON locked.id = fresh.account_id
    ) running WHERE balance_after >= 0
), moved AS (
    UPDATE accounts account
    SET credit_balance = account.credit_balance - totals.amount
    FROM (SELECT account_id, sum(price) AS amount FROM taken GROUP BY account_id) totals
    WHERE account.id = totals.account_id
    RETURNING account.id, account.credit_balance
), entries AS (
    INSERT INTO credit_ledger
        (account_id, amount, balance_after, kind, request_id, reason, created_at)
    SELECT account_id, -price, balance_after, 'reserve', request_id, 'request admitted', now()
    FROM taken
)
SELECT asked.request_id,
       taken.request_id IS NOT NULL AS reserved,
       fresh.request_id IS NULL AS already,
       coalesce(taken.balance_after, moved.credit_balance, locked.credit_balance,
                account_now.credit_balance, 0) AS balance
FROM asked
LEFT JOIN fresh ON fresh.request_id = asked.request_id
LEFT JOIN taken ON taken.request_id = asked.request_id
LEFT JOIN moved ON moved.id = asked.account_id
LEFT JOIN locked ON locked.id = asked.account_id
LEFT JOIN accounts account_now ON account_now.id = asked.account_id
ORDER BY asked.ordinal
"""


def balance_statement() -> Select[int]:
    """The balance of `account_id` (a bind parameter)."""
    return select(Account.credit_balance).where(
        Account.id == bindparam("account_id", type_=Integer)
    )


def grant(
    session: Session,
    *,
    account_id: int,
    amount: int,
    kind: str,
    reason: str,
    reference: str | None = None,
) -> int:
    """Add credits. A `reference` (e.g. "order:42") makes a second grant of the same
    kind for it fail with IntegrityError: the ledger's own guard against paying twice."""
    balance = _move(
        session,
        account_id=account_id,
        amount=amount,
        kind=kind,
        request_id=reference,
        reason=reason,
    )
    if balance is None:
        raise LookupError(f"account {account_id} does not exist")
    return balance


def settle(session: Session, settlements: Iterable[Settlement]) -> int:
    """Write usage rows, refunds and rollups; returns how many were new. Caller commits.

    One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING: the unique request id
    decides which settlements are new, atomically, even against a concurrent settler;
    only those get their refund and are added to the hourly rollups.
    """
    items = {item.request_id: item for item in settlements}
    if not items:
        return 0
    items |= _confirm_reservations(
        session, [item for item in items.values() if item.reservation_unconfirmed]
    )
    # In request id order: settlers racing on the same requests wait, never deadlock.
    ordered = [items[request_id] for request_id in sorted(items)]
    try:
        with session.begin_nested():
            inserted = _insert_usage(session, ordered)
    except IntegrityError:
        # A row the database refuses (its account is gone): settle the others one by one.
        inserted = set()
        for item in ordered:
            try:
                with session.begin_nested():
                    inserted |= _insert_usage(session, [item])
            except IntegrityError:
                log.error("settlement %s refused by the database; skipped", item.request_id)
    # One lock order (account, then request) for all settlers: no deadlocks between them.
    for request_id in sorted(inserted, key=lambda rid: (items[rid].account_id, rid)):
        item = items[request_id]
        refund = item.refund
        if refund:
            _move(
                session,
                account_id=item.account_id,
                amount=refund,
                kind="refund",
                request_id=item.request_id,
                reason=item.error_code or item.status,
            )
    usage_rollup.add(session, (items[request_id] for request_id in inserted))
    return len(inserted)


def _confirm_reservations(session: Session, unconfirmed: list[Settlement]) -> dict[str, Settlement]:
    """Settlements whose reservation went unanswered, as they are.

    Each gets a void reservation (amount 0) unless its real one is in the ledger. Where
    the void one goes in, nothing was reserved and nothing is refunded; and a reservation
    still on its way (the database was only slow) now fails on the ledger's unique row
    instead of taking credits that no settlement would give back. Where it does not, the
    reservation was made and the settlement refunds it as usual.
    """
    confirmed: dict[str, Settlement] = {}
    for item in unconfirmed:
        params = {"account_id": item.account_id, "request_id": item.request_id, "at": utcnow()}
        voided = session.execute(_void_reservation(session), params).first() is not None
        changes: dict[str, object] = {"reservation_unconfirmed": False}
        if voided:
            changes["credits_reserved"] = 0
        confirmed[item.request_id] = item.model_copy(update=changes)
    return confirmed


def _void_reservation(session: Session) -> Insert:
    """A reservation of 0 credits for `request_id`, unless it has one already."""
    # Core, not ORM: the table, so that the session runs the statement as it is.
    ledger = CreditEntry.__table__
    statement: Insert = (
        upsert_insert(session)(ledger)
        .from_select(
            ["account_id", "amount", "balance_after", "kind", "request_id", "reason", "created_at"],
            select(
                Account.id,
                literal(0),
                Account.credit_balance,
                literal("reserve"),
                bindparam("request_id", type_=String),
                literal(VOIDED_REASON),
                bindparam("at", type_=UTCDateTime()),
            ).where(Account.id == bindparam("account_id", type_=Integer)),
        )
        .on_conflict_do_nothing(
            index_elements=["request_id", "kind"], index_where=ledger.c.request_id.is_not(None)
        )
        .returning(ledger.c.id)
    )
    return statement


def _insert_usage(session: Session, items: list[Settlement]) -> set[str]:
    # One statement, parameters per row: compiled once and cached, and sent as batched
    # multi-row INSERTs by the driver layer (SQLAlchemy's "insertmanyvalues").
    table = UsageRecord.__table__
    statement = (
        upsert_insert(session)(table)
        .on_conflict_do_nothing(index_elements=["request_id"])
        .returning(table.c.request_id)
    )
    return set(session.execute(statement, [_usage_values(item) for item in items]).scalars())


def _usage_values(item: Settlement) -> dict[str, object]:
    return {
        "request_id": item.request_id,
        "account_id": item.account_id,
        "api_key_id": item.api_key_id,
        "model_requested": item.model_requested,
        "model_served": item.model_served,
        "pool": item.pool,
        "prompt_tokens": item.prompt_tokens,
        "completion_tokens": item.completion_tokens,
        "credits_charged": item.credits_charged,
        "queue_wait_ms": item.queue_wait_ms,
        "duration_ms": item.duration_ms,
        "status": item.status,
        "error_code": item.error_code,
        "created_at": usage_rollup.settled_at(item),
    }
