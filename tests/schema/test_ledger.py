"""The ledger straight against the databases: races on reserve and settle, grants.

PostgreSQL is the real server of the session (shared with the e2e stack, so every test
makes its own account); SQLite is a file of its own, as `make run` uses it.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from schema import ledger
from schema.messages import Settlement
from schema.models import Account, ApiKey, CreditEntry, UsageRecord
from tests.databases import Sessions, race


def new_account(sessions: Sessions, credits: int) -> int:
    with sessions() as session, session.begin():
        account = Account(name=f"ledger-{uuid.uuid4().hex}@example.com", credit_balance=0)
        session.add(account)
        session.flush()
        if credits:
            ledger.grant(
                session, account_id=account.id, amount=credits, kind="grant", reason="test"
            )
        return account.id


def new_key(sessions: Sessions, account_id: int) -> int:
    with sessions() as session, session.begin():
        secret = uuid.uuid4().hex
        key = ApiKey(account_id=account_id, label="ledger", prefix="rsy-ledger", digest=secret)
        session.add(key)
        session.flush()
        return key.id


def balance(sessions: Sessions, account_id: int) -> int:
    with sessions() as session:
        return session.get_one(Account, account_id).credit_balance


def entries(sessions: Sessions, account_id: int) -> list[CreditEntry]:
    with sessions() as session:
        return list(
            session.scalars(
                select(CreditEntry)
                .where(CreditEntry.account_id == account_id)
                .order_by(CreditEntry.id)
            )
        )


def ledger_sum(sessions: Sessions, account_id: int) -> int:
    with sessions() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
                CreditEntry.account_id == account_id
            )
        )
        return int(total or 0)


def reserve(sessions: Sessions, account_id: int, price: int) -> int:
    with sessions() as session, session.begin():
        return ledger.reserve(
            session, account_id=account_id, request_id=uuid.uuid4().hex, price=price
        )


@pytest.mark.parametrize(("price", "admitted", "left"), [(1, 5, 0), (2, 2, 1)])
def test_racing_reservations_never_overdraw(
    sessions: Sessions, price: int, admitted: int, left: int
) -> None:
    account_id = new_account(sessions, 5)
    lowest: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            lowest.append(balance(sessions, account_id))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        results = race(20, lambda _: reserve(sessions, account_id, price))
    finally:
        stop.set()
        watcher.join()

    won = sorted(r for r in results if isinstance(r, int))
    refused = [r for r in results if isinstance(r, ledger.InsufficientCredits)]
    assert won == [left + price * i for i in range(admitted)]
    assert len(refused) == 20 - admitted, results
    assert {(r.balance, r.price) for r in refused} == {(left, price)}
    assert lowest and min(lowest) >= 0
    assert balance(sessions, account_id) == left == ledger_sum(sessions, account_id)
    rows = entries(sessions, account_id)
    assert [(e.kind, e.amount) for e in rows] == [("grant", 5)] + [("reserve", -price)] * admitted
    assert sorted(e.balance_after for e in rows[1:]) == won


def test_refused_reservation_writes_nothing(sessions: Sessions) -> None:
    account_id = new_account(sessions, 1)
    with pytest.raises(ledger.InsufficientCredits) as caught:
        reserve(sessions, account_id, 2)
    assert (caught.value.balance, caught.value.price) == (1, 2)
    assert [(e.kind, e.amount) for e in entries(sessions, account_id)] == [("grant", 1)]
    assert balance(sessions, account_id) == 1


def settlement(
    sessions: Sessions, account_id: int, request_id: str, *, charged: int, reserved: int
) -> Settlement:
    return Settlement(
        request_id=request_id,
        account_id=account_id,
        api_key_id=new_key(sessions, account_id),
        model_requested="llama3.2:3b",
        model_served="llama3.2:3b",
        pool="local",
        credits_reserved=reserved,
        credits_charged=charged,
        status="ok" if charged else "error",
        error_code=None if charged else "upstream_busy",
        finished_at_ms=int(time.time() * 1000),
    )


def reserved(sessions: Sessions, account_id: int, price: int) -> str:
    request_id = uuid.uuid4().hex
    with sessions() as session, session.begin():
        ledger.reserve(session, account_id=account_id, request_id=request_id, price=price)
    return request_id


def settle(sessions: Sessions, item: Settlement) -> int:
    with sessions() as session, session.begin():
        return ledger.settle(session, [item])


def usage_rows(sessions: Sessions, request_id: str) -> list[UsageRecord]:
    with sessions() as session:
        return list(
            session.scalars(select(UsageRecord).where(UsageRecord.request_id == request_id))
        )


def test_settling_twice_writes_once(sessions: Sessions) -> None:
    account_id = new_account(sessions, 5)
    request_id = reserved(sessions, account_id, 2)
    item = settlement(sessions, account_id, request_id, charged=0, reserved=2)
    assert settle(sessions, item) == 1
    assert settle(sessions, item) == 0
    assert [(u.status, u.credits_charged) for u in usage_rows(sessions, request_id)] == [
        ("error", 0)
    ]
    rows = entries(sessions, account_id)
    assert [(e.kind, e.amount, e.balance_after) for e in rows] == [
        ("grant", 5, 5),
        ("reserve", -2, 3),
        ("refund", 2, 5),
    ]
    assert balance(sessions, account_id) == 5 == ledger_sum(sessions, account_id)


@pytest.mark.parametrize("charged", [0, 1], ids=["refund", "charged"])
def test_concurrent_settlers_write_one_usage_row_and_one_refund(
    sessions: Sessions, charged: int
) -> None:
    account_id = new_account(sessions, 5)
    request_id = reserved(sessions, account_id, 1)
    item = settlement(sessions, account_id, request_id, charged=charged, reserved=1)
    results = race(2, lambda _: settle(sessions, item))
    assert sorted(results) == [0, 1]  # type: ignore[type-var]
    assert len(usage_rows(sessions, request_id)) == 1
    kinds = [e.kind for e in entries(sessions, account_id)]
    assert kinds == ["grant", "reserve"] + (["refund"] if charged == 0 else [])
    assert balance(sessions, account_id) == 5 - charged == ledger_sum(sessions, account_id)


def test_batch_settle_skips_what_is_already_settled(sessions: Sessions) -> None:
    account_id = new_account(sessions, 5)
    first, second = reserved(sessions, account_id, 1), reserved(sessions, account_id, 1)
    settle(sessions, settlement(sessions, account_id, first, charged=1, reserved=1))
    with sessions() as session, session.begin():
        written = ledger.settle(
            session,
            [
                settlement(sessions, account_id, first, charged=1, reserved=1),
                settlement(sessions, account_id, second, charged=0, reserved=1),
                settlement(sessions, account_id, second, charged=0, reserved=1),
            ],
        )
    assert written == 1
    assert [e.kind for e in entries(sessions, account_id)] == [
        "grant",
        "reserve",
        "reserve",
        "refund",
    ]
    assert balance(sessions, account_id) == 4 == ledger_sum(sessions, account_id)


def unconfirmed(sessions: Sessions, account_id: int, request_id: str) -> Settlement:
    """What the api settles when it gave up waiting for the reservation's answer."""
    item = settlement(sessions, account_id, request_id, charged=0, reserved=2)
    return item.model_copy(
        update={"reservation_unconfirmed": True, "error_code": "database_unavailable"}
    )


def test_an_unanswered_reservation_that_was_made_is_refunded(sessions: Sessions) -> None:
    account_id = new_account(sessions, 5)
    request_id = reserved(sessions, account_id, 2)
    assert settle(sessions, unconfirmed(sessions, account_id, request_id)) == 1
    rows = entries(sessions, account_id)
    assert [(e.kind, e.amount, e.balance_after) for e in rows] == [
        ("grant", 5, 5),
        ("reserve", -2, 3),
        ("refund", 2, 5),
    ]
    assert [(u.credits_charged, u.error_code) for u in usage_rows(sessions, request_id)] == [
        (0, "database_unavailable")
    ]
    assert balance(sessions, account_id) == 5 == ledger_sum(sessions, account_id)


def test_an_unanswered_reservation_that_was_not_made_is_voided_not_refunded(
    sessions: Sessions,
) -> None:
    account_id = new_account(sessions, 5)
    request_id = uuid.uuid4().hex
    item = unconfirmed(sessions, account_id, request_id)
    assert settle(sessions, item) == 1
    assert settle(sessions, item) == 0  # settled again (a settler retried): nothing more
    rows = entries(sessions, account_id)
    assert [(e.kind, e.amount, e.balance_after, e.reason) for e in rows] == [
        ("grant", 5, 5, "test"),
        ("reserve", 0, 5, ledger.VOIDED_REASON),
    ]
    assert [(u.credits_charged, u.error_code) for u in usage_rows(sessions, request_id)] == [
        (0, "database_unavailable")
    ]
    # The reservation arrives late (the database was slow, not gone): it fails, and
    # takes nothing that no settlement would give back.
    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        ledger.reserve(session, account_id=account_id, request_id=request_id, price=2)
    assert balance(sessions, account_id) == 5 == ledger_sum(sessions, account_id)


def test_grant_adds_a_row_with_balance_after(sessions: Sessions) -> None:
    account_id = new_account(sessions, 0)
    with sessions() as session, session.begin():
        first = ledger.grant(session, account_id=account_id, amount=7, kind="grant", reason="a")
        second = ledger.grant(
            session, account_id=account_id, amount=5, kind="purchase", reason="pack"
        )
    assert (first, second) == (7, 12)
    rows = entries(sessions, account_id)
    assert [(e.kind, e.amount, e.balance_after, e.reason) for e in rows] == [
        ("grant", 7, 7, "a"),
        ("purchase", 5, 12, "pack"),
    ]
    assert all(e.request_id is None for e in rows)
    assert balance(sessions, account_id) == 12 == ledger_sum(sessions, account_id)


def test_grant_to_a_missing_account_writes_nothing(sessions: Sessions) -> None:
    with sessions() as session, session.begin():
        missing = (session.scalar(select(func.max(Account.id))) or 0) + 1000
    with sessions() as session, session.begin(), pytest.raises(LookupError):
        ledger.grant(session, account_id=missing, amount=5, kind="grant", reason="x")
    with sessions() as session:
        assert (
            session.scalars(select(CreditEntry).where(CreditEntry.account_id == missing)).all()
            == []
        )


def test_a_settlement_the_database_refuses_does_not_block_the_batch(sessions: Sessions) -> None:
    account_id = new_account(sessions, 5)
    good = reserved(sessions, account_id, 1)
    orphan = settlement(sessions, account_id, uuid.uuid4().hex, charged=0, reserved=1)
    orphan = orphan.model_copy(update={"account_id": 999_999_999})  # no such account
    with sessions() as session, session.begin():
        written = ledger.settle(
            session, [orphan, settlement(sessions, account_id, good, charged=0, reserved=1)]
        )
    assert written == 1
    assert len(usage_rows(sessions, good)) == 1 and usage_rows(sessions, orphan.request_id) == []
    assert balance(sessions, account_id) == 5 == ledger_sum(sessions, account_id)
