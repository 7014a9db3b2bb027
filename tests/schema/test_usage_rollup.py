"""Hourly usage rollups: written by `ledger.settle` for exactly the new usage rows, and
filled by migration 0004 from the usage rows that were there before it.

PostgreSQL is the session's server (every test makes its own account); SQLite a file.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from schema import ledger
from schema.db import make_engine, make_session_factory
from schema.messages import Settlement
from schema.migrate import upgrade
from schema.models import Account, ApiKey, UsageHourly, UsageHourlyTotal, UsageRecord
from tests.databases import Sessions, race
from tests.services import PostgresServer

Row = tuple[Any, ...]

HOUR = datetime(2026, 3, 4, 9, tzinfo=UTC)


def new_account(sessions: Sessions) -> int:
    with sessions() as session, session.begin():
        account = Account(name=f"rollup-{uuid.uuid4().hex}@example.com", credit_balance=0)
        session.add(account)
        session.flush()
        return account.id


def new_key(sessions: Sessions, account_id: int) -> int:
    with sessions() as session, session.begin():
        key = ApiKey(account_id=account_id, label="r", prefix="rsy-r", digest=uuid.uuid4().hex)
        session.add(key)
        session.flush()
        return key.id


def settlement(
    account_id: int,
    key_id: int,
    at: datetime,
    *,
    model: str = "llama3.2:3b",
    pool: str = "local",
    status: str = "ok",
    prompt: int = 10,
    completion: int = 20,
    charged: int = 1,
) -> Settlement:
    return Settlement.model_validate(
        {
            "request_id": uuid.uuid4().hex,
            "account_id": account_id,
            "api_key_id": key_id,
            "model_requested": model,
            "model_served": model,
            "pool": pool,
            "credits_reserved": charged,
            "credits_charged": charged,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "status": status,
            "finished_at_ms": int(at.timestamp() * 1000),
        }
    )


def settle(sessions: Sessions, items: list[Settlement]) -> int:
    with sessions() as session, session.begin():
        return ledger.settle(session, items)


def rollups(sessions: Sessions, account_id: int) -> list[Row]:
    """(hour, key, model, pool, requests, failed, prompt, completion, credits), sorted."""
    with sessions() as session:
        rows = session.execute(
            select(
                UsageHourly.hour,
                UsageHourly.api_key_id,
                UsageHourly.model,
                UsageHourly.pool,
                UsageHourly.requests,
                UsageHourly.failed,
                UsageHourly.prompt_tokens,
                UsageHourly.completion_tokens,
                UsageHourly.credits,
            ).where(UsageHourly.account_id == account_id)
        )
        return sorted((_utc(row[0]), *row[1:]) for row in rows)


def totals(sessions: Sessions, account_id: int) -> list[Row]:
    """(hour, requests, failed, prompt, completion, credits), sorted."""
    with sessions() as session:
        rows = session.execute(
            select(
                UsageHourlyTotal.hour,
                UsageHourlyTotal.requests,
                UsageHourlyTotal.failed,
                UsageHourlyTotal.prompt_tokens,
                UsageHourlyTotal.completion_tokens,
                UsageHourlyTotal.credits,
            ).where(UsageHourlyTotal.account_id == account_id)
        )
        return sorted((_utc(row[0]), *row[1:]) for row in rows)


def summed_by_hour(rows: list[Row]) -> list[Row]:
    """The `usage_hourly` rows summed per hour: what `usage_hourly_totals` must hold."""
    hours: dict[datetime, list[int]] = {}
    for hour, _key, _model, _pool, *counts in rows:
        total = hours.setdefault(hour, [0] * 5)
        for i, value in enumerate(counts):
            total[i] += value
    return sorted((hour, *counts) for hour, counts in hours.items())


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_settle_adds_each_new_request_to_its_hour_key_model_and_pool(sessions: Sessions) -> None:
    account_id = new_account(sessions)
    first, second = new_key(sessions, account_id), new_key(sessions, account_id)
    later = HOUR + timedelta(hours=1)
    items = [
        settlement(account_id, first, HOUR),
        settlement(account_id, first, HOUR + timedelta(minutes=59, seconds=59.999)),
        settlement(account_id, first, later, prompt=1, completion=2),
        settlement(account_id, second, HOUR, prompt=3, completion=4),
        settlement(account_id, first, HOUR, model="qwen3.5:cloud", pool="cloud", charged=2),
        settlement(account_id, first, HOUR, pool="cloud", charged=2),  # failed over
    ]
    assert settle(sessions, items) == 6
    assert settle(sessions, [settlement(account_id, first, HOUR, prompt=5, completion=5)]) == 1
    assert rollups(sessions, account_id) == [
        (HOUR, first, "llama3.2:3b", "cloud", 1, 0, 10, 20, 2),
        (HOUR, first, "llama3.2:3b", "local", 3, 0, 25, 45, 3),
        (HOUR, first, "qwen3.5:cloud", "cloud", 1, 0, 10, 20, 2),
        (HOUR, second, "llama3.2:3b", "local", 1, 0, 3, 4, 1),
        (later, first, "llama3.2:3b", "local", 1, 0, 1, 2, 1),
    ]
    assert totals(sessions, account_id) == [(HOUR, 6, 0, 48, 89, 8), (later, 1, 0, 1, 2, 1)]


def test_failed_and_cancelled_requests_count_as_failed(sessions: Sessions) -> None:
    account_id = new_account(sessions)
    key = new_key(sessions, account_id)
    items = [
        settlement(account_id, key, HOUR),
        settlement(account_id, key, HOUR, status="error", prompt=7, completion=0, charged=0),
        settlement(account_id, key, HOUR, status="cancelled", prompt=3, completion=1, charged=0),
    ]
    settle(sessions, items)
    assert rollups(sessions, account_id) == [(HOUR, key, "llama3.2:3b", "local", 3, 2, 20, 21, 1)]
    assert totals(sessions, account_id) == [(HOUR, 3, 2, 20, 21, 1)]


def test_settling_a_request_again_counts_it_once(sessions: Sessions) -> None:
    account_id = new_account(sessions)
    key = new_key(sessions, account_id)
    once = settlement(account_id, key, HOUR, prompt=1, completion=1)
    assert settle(sessions, [once]) == 1
    assert settle(sessions, [once]) == 0
    assert settle(sessions, [once, settlement(account_id, key, HOUR), once]) == 1
    assert rollups(sessions, account_id) == [(HOUR, key, "llama3.2:3b", "local", 2, 0, 11, 21, 2)]
    assert totals(sessions, account_id) == [(HOUR, 2, 0, 11, 21, 2)]


def test_concurrent_settlers_add_up_exactly(sessions: Sessions) -> None:
    """Threads settle overlapping batches, in shuffled orders, into the same buckets:
    no deadlock, no lost update, and a request settled by several threads counts once."""
    account_id = new_account(sessions)
    keys = [new_key(sessions, account_id), new_key(sessions, account_id)]
    rng = random.Random(7)

    def some(count: int) -> list[Settlement]:
        return [
            settlement(
                account_id,
                rng.choice(keys),
                HOUR + timedelta(hours=rng.randrange(3), minutes=rng.randrange(60)),
                model=rng.choice(("llama3.2:3b", "gpt-oss:20b")),
                status=rng.choice(("ok", "ok", "ok", "error")),
                prompt=rng.randrange(100),
                completion=rng.randrange(100),
                charged=rng.randrange(3),
            )
            for _ in range(count)
        ]

    shared = some(10)
    batches = [some(30) + shared for _ in range(8)]
    for i, batch in enumerate(batches):
        random.Random(i).shuffle(batch)

    results = race(len(batches), lambda i: settle(sessions, batches[i]))

    assert all(isinstance(r, int) for r in results), results
    assert sum(r for r in results if isinstance(r, int)) == 8 * 30 + 10
    distinct = {item.request_id: item for batch in batches for item in batch}
    assert len(distinct) == 8 * 30 + 10
    expected: Counter[tuple[Any, ...]] = Counter()
    for item in distinct.values():
        at = datetime.fromtimestamp(item.finished_at_ms / 1000, UTC)
        hour = at.replace(minute=0, second=0, microsecond=0)
        bucket = (hour, item.api_key_id, item.model_requested, item.pool)
        for name, value in (
            ("requests", 1),
            ("failed", int(item.status != "ok")),
            ("prompt", item.prompt_tokens),
            ("completion", item.completion_tokens),
            ("credits", item.credits_charged),
        ):
            expected[(*bucket, name)] += value
    names = ("requests", "failed", "prompt", "completion", "credits")
    buckets = sorted({key[:4] for key in expected})
    expected_rows = [
        (*bucket, *(expected[(*bucket, name)] for name in names)) for bucket in buckets
    ]
    assert rollups(sessions, account_id) == expected_rows
    assert totals(sessions, account_id) == summed_by_hour(expected_rows)
    assert len(totals(sessions, account_id)) == 3


# --- migration 0004 ---------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of its own. PostgreSQL's runs its sessions in Asia/Kolkata (UTC+5:30),
    where an hour cut in the session's zone would start at half past a UTC hour."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('backfill') / 'backfill.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"backfill_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        connection.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kolkata'"))
    try:
        yield make_url(server.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def usage_row(
    account_id: int,
    key_id: int | None,
    model: str,
    pool: str,
    status: str,
    prompt: int,
    completion: int,
    credits: int,
    minutes: float,
) -> dict[str, Any]:
    return {
        "request_id": uuid.uuid4().hex,
        "account_id": account_id,
        "api_key_id": key_id,
        "model_requested": model,
        "model_served": model,
        "pool": pool,
        "status": status,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "credits_charged": credits,
        "queue_wait_ms": 0,
        "duration_ms": 0,
        "created_at": HOUR + timedelta(minutes=minutes),
    }


def test_migration_fills_rollups_from_existing_usage_rows(fresh_url: str) -> None:
    upgrade(fresh_url, "0003")
    engine = make_engine(fresh_url)
    try:
        with engine.begin() as connection:
            account_id, other_id = (
                connection.execute(
                    insert(Account).values(name=name, credit_balance=0).returning(Account.id)
                ).scalar_one()
                for name in ("backfill", "other")
            )
            key_id = connection.execute(
                insert(ApiKey)
                .values(account_id=account_id, label="k", prefix="rsy-k", digest="d")
                .returning(ApiKey.id)
            ).scalar_one()
            llama, qwen = "llama3.2:3b", "qwen3.5:cloud"
            # account, key, model, pool, status, prompt, completion, credits, minutes past HOUR
            rows = [
                (account_id, key_id, llama, "local", "ok", 10, 20, 1, 0),
                (account_id, key_id, llama, "local", "error", 5, 0, 0, 59.99999),
                (account_id, None, llama, "local", "ok", 1, 2, 1, 29),
                (account_id, None, llama, "local", "cancelled", 3, 4, 0, 31),
                (account_id, key_id, llama, "cloud", "ok", 2, 2, 2, 30),
                (account_id, key_id, qwen, "cloud", "ok", 7, 8, 2, 60),
                (other_id, None, llama, "local", "ok", 100, 100, 1, 0),
            ]
            connection.execute(insert(UsageRecord), [usage_row(*row) for row in rows])

        upgrade(fresh_url)

        sessions = make_session_factory(engine)
        assert rollups(sessions, account_id) == [
            (HOUR, 0, llama, "local", 2, 1, 4, 6, 1),
            (HOUR, key_id, llama, "cloud", 1, 0, 2, 2, 2),
            (HOUR, key_id, llama, "local", 2, 1, 15, 20, 1),
            (HOUR + timedelta(hours=1), key_id, qwen, "cloud", 1, 0, 7, 8, 2),
        ]
        assert rollups(sessions, other_id) == [(HOUR, 0, llama, "local", 1, 0, 100, 100, 1)]
        assert totals(sessions, account_id) == [
            (HOUR, 5, 2, 21, 28, 4),
            (HOUR + timedelta(hours=1), 1, 0, 7, 8, 2),
        ]
        assert totals(sessions, other_id) == [(HOUR, 1, 0, 100, 100, 1)]
        # Settled after the migration: added to the backfilled bucket.
        settle(sessions, [settlement(account_id, key_id, HOUR.replace(minute=10))])
        assert rollups(sessions, account_id)[2] == (HOUR, key_id, llama, "local", 3, 1, 25, 40, 2)
        assert totals(sessions, account_id)[0] == (HOUR, 6, 2, 31, 48, 5)
    finally:
        engine.dispose()
