"""Credit reservations as the api makes them: async psycopg on PostgreSQL, a worker
thread on SQLite. Races, retries, an unreachable database and one that does not answer,
on both."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from sqlalchemy import Connection, create_engine, text

from schema import ledger
from schema.db import make_session_factory
from schema.reservations import (
    CreditReservations,
    PostgresReservations,
    ReservationsUnavailable,
    ReservationUnconfirmed,
    ThreadedReservations,
    _Ask,
    _Batches,
    reservations_for,
)
from tests.databases import Sessions
from tests.schema.test_ledger import (
    balance,
    entries,
    ledger_sum,
    new_account,
    settle,
    unconfirmed,
)

ANSWER_TIMEOUT_S = 0.3


@pytest.fixture
async def reservations(sessions: Sessions) -> AsyncIterator[CreditReservations]:
    made = reservations_for(sessions)
    await made.open()
    yield made
    await made.close()


async def test_concurrent_reservations_admit_exactly_what_the_balance_covers(
    sessions: Sessions, reservations: CreditReservations
) -> None:
    account_id = new_account(sessions, 3)

    async def take() -> int:
        return await reservations.reserve(
            account_id=account_id, request_id=uuid.uuid4().hex, price=1
        )

    results = await asyncio.gather(*(take() for _ in range(50)), return_exceptions=True)
    assert sorted(r for r in results if isinstance(r, int)) == [0, 1, 2]
    refused = [r for r in results if isinstance(r, ledger.InsufficientCredits)]
    assert len(refused) == 47 and all(r.balance == 0 and r.price == 1 for r in refused)
    assert balance(sessions, account_id) == 0 == ledger_sum(sessions, account_id)
    kinds = [entry.kind for entry in entries(sessions, account_id)]
    assert kinds == ["grant", "reserve", "reserve", "reserve"]


async def test_a_request_reserved_twice_is_charged_once(
    sessions: Sessions, reservations: CreditReservations
) -> None:
    account_id = new_account(sessions, 10)
    request_id = uuid.uuid4().hex
    assert await reservations.reserve(account_id=account_id, request_id=request_id, price=2) == 8
    # What a retry after a lost reply does: the ledger's unique row refuses the second.
    assert await reservations.reserve(account_id=account_id, request_id=request_id, price=2) == 8
    assert balance(sessions, account_id) == 8 == ledger_sum(sessions, account_id)


async def test_a_connection_the_server_dropped_is_replaced(postgres_sessions: Sessions) -> None:
    sessions = postgres_sessions
    engine = sessions.kw["bind"]
    reservations = PostgresReservations(engine)
    await reservations.open()
    try:
        account_id = new_account(sessions, 5)
        await reservations.reserve(account_id=account_id, request_id=uuid.uuid4().hex, price=1)
        with engine.connect() as connection, connection.begin():
            # The pool's idle connection dies, as in a server restart.
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = '' AND pid <> pg_backend_pid() "
                    "AND datname = current_database() AND state = 'idle'"
                )
            )
        left = await reservations.reserve(
            account_id=account_id, request_id=uuid.uuid4().hex, price=1
        )
    finally:
        await reservations.close()
    assert left == 3 == balance(sessions, account_id) == ledger_sum(sessions, account_id)


def unreachable_like(sessions: Sessions) -> CreditReservations:
    """Reservations of the same kind on a database that cannot be reached."""
    if sessions.kw["bind"].dialect.name == "postgresql":
        url = sessions.kw["bind"].url.set(port=1)  # nothing listens on port 1
        return PostgresReservations(create_engine(url), connect_wait_s=0.5)
    engine = create_engine(f"sqlite:////nonexistent-{uuid.uuid4().hex}/resayil.db")
    return reservations_for(make_session_factory(engine))


async def test_an_unreachable_database_is_reported_not_raised_raw(sessions: Sessions) -> None:
    unreachable = unreachable_like(sessions)
    await unreachable.open()
    try:
        with pytest.raises(ReservationsUnavailable):
            await unreachable.reserve(account_id=1, request_id=uuid.uuid4().hex, price=1)
    finally:
        await unreachable.close()


def test_the_prepared_statement_is_plain_sql_for_the_driver(postgres_sessions: Sessions) -> None:
    sessions = postgres_sessions
    account_id = new_account(sessions, 4)
    reservations = PostgresReservations(sessions.kw["bind"])
    prepared = reservations._reserve_sql
    url = sessions.kw["bind"].url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        params = prepared.params(account_id=account_id, request_id=uuid.uuid4().hex, price=3)
        row = conn.execute(prepared.sql, params).fetchone()
    assert row == (1,)
    assert balance(sessions, account_id) == 1 == ledger_sum(sessions, account_id)


def impatient(sessions: Sessions) -> CreditReservations:
    """Reservations that wait `ANSWER_TIMEOUT_S` for an answer."""
    engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        return PostgresReservations(engine, answer_timeout_s=ANSWER_TIMEOUT_S)
    return ThreadedReservations(sessions, answer_timeout_s=ANSWER_TIMEOUT_S)


@contextlib.contextmanager
def account_held(sessions: Sessions, account_id: int) -> Iterator[Connection]:
    """Another transaction holds the account's row as an update does (a reservation of
    the account waits for it) until the block ends; on SQLite, the whole database."""
    engine = sessions.kw["bind"]
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("SELECT 1 FROM accounts WHERE id = :id FOR NO KEY UPDATE"), {"id": account_id}
            )
        else:
            connection.exec_driver_sql("UPDATE accounts SET id = id WHERE id = ?", (account_id,))
        yield connection
        connection.rollback()


# The coroutines that make a reservation: PostgreSQL's statement sender, SQLite's thread.
RESERVING = ("_Batches._send", "ThreadedReservations._reserve")


def reserving() -> bool:
    return any(
        getattr(task.get_coro(), "__qualname__", "") in RESERVING for task in asyncio.all_tasks()
    )


async def reservations_ended(timeout_s: float = 10) -> None:
    """Until no task is making a reservation (a late one has ended)."""
    deadline = time.monotonic() + timeout_s
    while reserving():
        assert time.monotonic() < deadline, "a reservation is still running"
        await asyncio.sleep(0.02)


async def test_an_unanswered_reservation_is_unconfirmed_in_bounded_time_then_refunded(
    sessions: Sessions,
) -> None:
    account_id = new_account(sessions, 5)
    request_id = uuid.uuid4().hex
    reservations = impatient(sessions)
    await reservations.open()
    try:
        with account_held(sessions, account_id):
            started = time.monotonic()
            with pytest.raises(ReservationUnconfirmed):
                await reservations.reserve(account_id=account_id, request_id=request_id, price=2)
            waited_s = time.monotonic() - started
            assert reserving()  # held back by the lock, not given up
        # The database answers at last: the reservation it was still holding is made.
        await reservations_ended()
    finally:
        await reservations.close()
    assert ANSWER_TIMEOUT_S <= waited_s < ANSWER_TIMEOUT_S + 2
    assert balance(sessions, account_id) == 3
    # Settled as unconfirmed, the request gets its credits back.
    assert settle(sessions, unconfirmed(sessions, account_id, request_id)) == 1
    assert [e.kind for e in entries(sessions, account_id)] == ["grant", "reserve", "refund"]
    assert balance(sessions, account_id) == 5 == ledger_sum(sessions, account_id)


async def test_a_reservation_settled_before_it_arrives_takes_nothing(
    postgres_sessions: Sessions,
) -> None:
    sessions = postgres_sessions
    account_id = new_account(sessions, 5)
    request_id = uuid.uuid4().hex
    reservations = impatient(sessions)
    await reservations.open()
    try:
        with account_held(sessions, account_id):
            with pytest.raises(ReservationUnconfirmed):
                await reservations.reserve(account_id=account_id, request_id=request_id, price=2)
            assert reserving()
            # The settler gets there first, while the reservation still waits.
            assert settle(sessions, unconfirmed(sessions, account_id, request_id)) == 1
        await reservations_ended()  # the late reservation runs now, and must fail
    finally:
        await reservations.close()
    assert [(e.kind, e.amount) for e in entries(sessions, account_id)] == [
        ("grant", 5),
        ("reserve", 0),
    ]
    assert balance(sessions, account_id) == 5 == ledger_sum(sessions, account_id)


async def test_whether_the_database_answers(sessions: Sessions) -> None:
    reservations = impatient(sessions)
    await reservations.open()
    try:
        assert await reservations.answers(timeout_s=5)
    finally:
        await reservations.close()
    unreachable = unreachable_like(sessions)
    await unreachable.open()
    try:
        started = time.monotonic()
        assert not await unreachable.answers(timeout_s=2)
        assert time.monotonic() - started < 3
    finally:
        await unreachable.close()


@pytest.fixture
async def on_postgres(postgres_sessions: Sessions) -> AsyncIterator[PostgresReservations]:
    """The api's reservations on PostgreSQL, with their product settings."""
    made = PostgresReservations(postgres_sessions.kw["bind"])
    await made.open()
    yield made
    await made.close()


async def reserve_all(
    reservations: CreditReservations, asks: list[tuple[int, str, int]]
) -> list[int | BaseException]:
    """Reservations asked together (in one loop turn), as concurrent requests ask them."""
    return await asyncio.gather(
        *(
            reservations.reserve(account_id=account_id, request_id=request_id, price=price)
            for account_id, request_id, price in asks
        ),
        return_exceptions=True,
    )


def reserve_rows(sessions: Sessions, account_id: int) -> dict[str, int]:
    return {
        entry.request_id: entry.amount
        for entry in entries(sessions, account_id)
        if entry.kind == "reserve" and entry.request_id is not None
    }


async def test_reservations_under_load_go_together_each_account_as_far_as_it_covers(
    postgres_sessions: Sessions, on_postgres: PostgresReservations
) -> None:
    sessions = postgres_sessions
    three, five = new_account(sessions, 3), new_account(sessions, 5)
    asks = [(three if n % 2 else five, uuid.uuid4().hex, 1) for n in range(40)]
    results = await reserve_all(on_postgres, asks)
    statements = on_postgres._batches.statements
    assert statements < len(asks) / 4  # together, not one statement each
    for account_id, credits in ((three, 3), (five, 5)):
        own = [r for (a, _, _), r in zip(asks, results, strict=True) if a == account_id]
        assert sorted(r for r in own if isinstance(r, int)) == list(range(credits))
        refused = [r for r in own if isinstance(r, ledger.InsufficientCredits)]
        assert len(refused) == 20 - credits and all(r.balance == 0 for r in refused)
        assert len(reserve_rows(sessions, account_id)) == credits
        assert balance(sessions, account_id) == 0 == ledger_sum(sessions, account_id)


async def test_one_accounts_requests_of_two_prices_in_a_burst(
    postgres_sessions: Sessions, on_postgres: PostgresReservations
) -> None:
    sessions = postgres_sessions
    account_id = new_account(sessions, 7)
    asks = [(account_id, uuid.uuid4().hex, 2 if n % 3 else 1) for n in range(12)]
    results = await reserve_all(on_postgres, asks)
    taken = {
        request_id: price
        for (_, request_id, price), result in zip(asks, results, strict=True)
        if isinstance(result, int)
    }
    refused = [
        price for (_, _, price), r in zip(asks, results, strict=True) if not isinstance(r, int)
    ]
    assert all(isinstance(r, (int, ledger.InsufficientCredits)) for r in results)
    assert reserve_rows(sessions, account_id) == {rid: -price for rid, price in taken.items()}
    left = balance(sessions, account_id)
    assert left == 7 - sum(taken.values()) == ledger_sum(sessions, account_id)
    # Nothing refused that the balance could still pay for: taken as if one by one.
    assert left < min(refused)


async def test_a_request_reserved_before_is_not_charged_again_with_others(
    postgres_sessions: Sessions, on_postgres: PostgresReservations
) -> None:
    sessions = postgres_sessions
    account_id = new_account(sessions, 10)
    again = uuid.uuid4().hex
    assert await on_postgres.reserve(account_id=account_id, request_id=again, price=2) == 8
    others = [uuid.uuid4().hex for _ in range(4)]
    asks = [(account_id, again, 2)] + [(account_id, rid, 2) for rid in others]
    results = await reserve_all(on_postgres, asks)
    statements = on_postgres._batches.statements
    assert statements == 2  # the first alone, then the five together
    assert results[1:] == [6, 4, 2, 0]
    assert isinstance(results[0], int)  # reserved already: not refused, not charged
    assert reserve_rows(sessions, account_id) == {rid: -2 for rid in [again, *others]}
    assert balance(sessions, account_id) == 0 == ledger_sum(sessions, account_id)


async def test_a_void_reservation_that_comes_in_during_a_shared_statement(
    postgres_sessions: Sessions, on_postgres: PostgresReservations
) -> None:
    """The settler voids an unconfirmed request while a statement that also reserves it
    for others runs: the statement fails whole, and each request is reserved alone."""
    sessions = postgres_sessions
    account_id = new_account(sessions, 10)
    voided, others = uuid.uuid4().hex, [uuid.uuid4().hex, uuid.uuid4().hex]
    with sessions.kw["bind"].connect() as settler:
        settler.execute(
            text(
                "INSERT INTO credit_ledger (account_id, amount, balance_after, kind,"
                " request_id, reason, created_at)"
                " VALUES (:a, 0, 10, 'reserve', :r, 'void', now())"
            ),
            {"a": account_id, "r": voided},
        )
        asks = [(account_id, rid, 3) for rid in [voided, *others]]
        pending = asyncio.ensure_future(reserve_all(on_postgres, asks))
        await asyncio.sleep(0.3)  # the statement waits on the void row's unique key
        assert not pending.done()
        settler.commit()
    results = await pending
    assert isinstance(results[0], int)  # voided: not charged
    assert sorted(r for r in results[1:] if isinstance(r, int)) == [4, 7]
    assert reserve_rows(sessions, account_id) == {voided: 0, others[0]: -3, others[1]: -3}
    assert balance(sessions, account_id) == 4 == ledger_sum(sessions, account_id)


async def test_how_reservations_are_grouped_into_statements() -> None:
    """Alone when nothing runs; those that come meanwhile together, one price per account
    and each request once a statement; a failure of a statement fails its requests."""
    statements: list[list[tuple[int, str, int]]] = []
    gate = asyncio.Event()

    async def alone(ask: _Ask) -> int:
        statements.append([(ask.account_id, ask.request_id, ask.price)])
        await gate.wait()
        return 100

    async def together(asks: list[_Ask]) -> None:
        statements.append([(ask.account_id, ask.request_id, ask.price) for ask in asks])
        if any(ask.request_id == "boom" for ask in asks):
            raise RuntimeError("not the database's answer")
        for ask in asks:
            ask.succeed(50)

    batches = _Batches(alone, together, at_once=1)
    first = batches.ask(1, "a", 1)
    await asyncio.sleep(0)  # the first goes alone and waits on the gate
    later = [batches.ask(1, "b", 1), batches.ask(1, "c", 2), batches.ask(2, "d", 2)]
    later += [batches.ask(1, "b", 1), batches.ask(1, "e", 1), batches.ask(3, "boom", 1)]
    gate.set()
    async with asyncio.timeout(5):  # none is left waiting
        answers = await asyncio.gather(first, *later, return_exceptions=True)
    assert statements == [
        [(1, "a", 1)],
        [(1, "b", 1), (2, "d", 2), (1, "e", 1), (3, "boom", 1)],  # c: another price; b again
        [(1, "c", 2)],  # the second b: account 1 has price 2 in this one
        [(1, "b", 1)],
    ]
    assert answers[0] == 100
    assert [type(a).__name__ for a in answers[1:]] == [
        "RuntimeError",  # b, in the statement that failed
        "int",
        "RuntimeError",
        "int",  # the second b, alone
        "RuntimeError",
        "RuntimeError",
    ]
