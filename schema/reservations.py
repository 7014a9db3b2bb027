"""Credit reservations on the request path.

Every chat request waits for its reservation, so on PostgreSQL it skips the ORM and
the worker thread: a small pool of async psycopg connections runs
`ledger.reserve_statement()` on the event loop, compiled once and prepared on each
connection. On SQLite, `ledger.reserve` runs in a worker thread. Both raise
`ledger.InsufficientCredits`, `ReservationsUnavailable` when the database cannot be
reached (nothing was reserved), and `ReservationUnconfirmed` when a reservation was sent
but its answer did not come, within `ANSWER_TIMEOUT_S` or at all: it may have been made.
Such a request is settled with `reservation_unconfirmed` (`ledger.settle` sorts it out).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

import anyio
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement

from schema import ledger
from schema.bounded import ANSWER_TIMEOUT_S, BoundedWaits, NoAnswer

POOL_SIZE = 10
CONNECT_WAIT_S = 5.0


class ReservationsUnavailable(Exception):
    """The database did not answer; nothing was reserved."""


class ReservationUnconfirmed(Exception):
    """The reservation was sent but no answer came: it may or may not have been made."""


class CreditReservations(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def reserve(self, *, account_id: int, request_id: str, price: int) -> int:
        """Take `price` credits for the request; returns the balance left."""
        ...

    async def answers(self, *, timeout_s: float) -> bool:
        """Whether the database answers a trivial query within `timeout_s`."""
        ...


def reservations_for(sessions: sessionmaker[Session]) -> CreditReservations:
    engine: Engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        return PostgresReservations(engine)
    return ThreadedReservations(sessions)


class _Prepared:
    """A Core statement compiled once to the driver's SQL, with its literal values."""

    def __init__(self, statement: ClauseElement, engine: Engine) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self._literals = dict(compiled.params)

    def params(self, **values: Any) -> dict[str, Any]:
        return self._literals | values


class _BoundedReservations(ABC):
    """What both kinds share: no wait for the database longer than its bound."""

    def __init__(self, answer_timeout_s: float) -> None:
        self._answer_timeout_s = answer_timeout_s
        self._waiting = BoundedWaits()

    async def reserve(self, *, account_id: int, request_id: str, price: int) -> int:
        try:
            return await self._waiting.answer(
                self._reserve(account_id, request_id, price), self._answer_timeout_s
            )
        except NoAnswer:
            raise ReservationUnconfirmed(f"no answer in {self._answer_timeout_s} s") from None

    async def answers(self, *, timeout_s: float) -> bool:
        try:
            await self._waiting.answer(self._select_one(), timeout_s)
        except Exception:  # unanswered, or the database refused: down either way
            return False
        return True

    @abstractmethod
    async def _reserve(self, account_id: int, request_id: str, price: int) -> int: ...

    @abstractmethod
    async def _select_one(self) -> None: ...


class PostgresReservations(_BoundedReservations):
    def __init__(
        self,
        engine: Engine,
        *,
        connect_wait_s: float = CONNECT_WAIT_S,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> None:
        super().__init__(answer_timeout_s)
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=connect_wait_s,
            open=False,
            kwargs={"autocommit": True},
        )
        self._reserve_sql = _Prepared(ledger.reserve_statement(), engine)
        self._balance_sql = _Prepared(ledger.balance_statement(), engine)

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def _select_one(self) -> None:
        async with self._pool.connection() as connection:
            await connection.execute("SELECT 1")

    async def _reserve(self, account_id: int, request_id: str, price: int) -> int:
        params = self._reserve_sql.params(account_id=account_id, request_id=request_id, price=price)
        try:
            try:
                return await self._reserve_once(params, account_id, price)
            except PoolTimeout as error:  # no connection: nothing was sent
                raise ReservationsUnavailable(str(error)) from error
            except psycopg.OperationalError as first:
                # Connections that broke while idle (the server restarted): drop them all
                # and try once more. Safe even if the first statement ran: its ledger row
                # is unique per request, so a second one fails instead of charging twice.
                await self._pool.check()
                try:
                    return await self._reserve_once(params, account_id, price)
                except (psycopg.OperationalError, PoolTimeout) as error:
                    # The first statement may have run before its connection broke.
                    raise ReservationUnconfirmed(str(error)) from first
        except psycopg.errors.UniqueViolation:
            return await self._balance(account_id)

    async def _balance(self, account_id: int) -> int:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(
                self._balance_sql.sql, self._balance_sql.params(account_id=account_id), prepare=True
            )
            row = await cursor.fetchone()
        return 0 if row is None else int(row[0])

    async def _reserve_once(self, params: dict[str, Any], account_id: int, price: int) -> int:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(self._reserve_sql.sql, params, prepare=True)
            row = await cursor.fetchone()
        if row is None:
            raise ledger.InsufficientCredits(await self._balance(account_id), price)
        return int(row[0])


class ThreadedReservations(_BoundedReservations):
    def __init__(
        self, sessions: sessionmaker[Session], *, answer_timeout_s: float = ANSWER_TIMEOUT_S
    ) -> None:
        super().__init__(answer_timeout_s)
        self._sessions = sessions

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def _select_one(self) -> None:
        def select_one() -> None:
            with self._sessions() as session:
                session.execute(text("SELECT 1"))

        await anyio.to_thread.run_sync(select_one)

    async def _reserve(self, account_id: int, request_id: str, price: int) -> int:
        def run() -> int:
            with self._sessions() as session, session.begin():
                return ledger.reserve(
                    session, account_id=account_id, request_id=request_id, price=price
                )

        try:
            return await anyio.to_thread.run_sync(run)
        except IntegrityError:
            # The request is reserved already (as on PostgreSQL: never charged twice).
            return await anyio.to_thread.run_sync(self._balance, account_id)
        except OperationalError as error:
            raise ReservationsUnavailable(str(error)) from error

    def _balance(self, account_id: int) -> int:
        with self._sessions() as session:
            return int(
                session.execute(ledger.balance_statement(), {"account_id": account_id}).scalar_one()
            )
