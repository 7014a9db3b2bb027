"""The system under test: throwaway PostgreSQL and Redis, the stack as real processes,
and the books check that proves no usage row or ledger write was dropped."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select, update

from bench.load import ANSWER_TOKENS
from schema.db import make_engine
from schema.migrate import upgrade
from schema.models import Account, Plan, UsageRecord
from tests.services import start_postgres, start_redis
from tests.stack import Process, Stack

SETTLE_TIMEOUT_S = 30.0
BENCH_RATE_LIMIT = 10_000_000  # requests per minute, per account
# The test stack pins settings that make tests fast to observe (a catalog re-read on
# every request, short leases); the bench runs the product's defaults instead.
PRODUCT_DEFAULTS = {"CATALOG_TTL_S": "5", "LEASE_MS": "5000"}
# Failover to the cloud fallback stays in the path (backlog check, routed enqueue) but
# never fires: "cloud" is the same simulator here, and overflowing would blur what is
# measured and spend the day's cloud budget part-way through the run.
NO_FAILOVER = {"FAILOVER_BACKLOG": "1000000"}


@dataclass
class BenchStack(Stack):
    """`Stack` whose processes get `overrides` on top of the test environment."""

    overrides: dict[str, str] = field(default_factory=lambda: dict(PRODUCT_DEFAULTS))
    service_pids: dict[str, int] = field(default_factory=dict)  # redis, postgres

    def cpu_trees(self) -> dict[str, int]:
        """The gateway's parts and the simulator, by name: root process ids for CpuMeter."""
        processes = {process.name: process.popen.pid for process in self.processes}
        names = {"api": "api", "dispatcher": "dispatcher", "sim": "simulator"}
        trees = {label: processes[name] for name, label in names.items() if name in processes}
        return trees | self.service_pids

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        return super()._spawn(name, args, {**(env or self.env), **self.overrides})


@contextlib.contextmanager
def running_stack(
    *,
    local_slots: int,
    sim_parallel: int,
    failover: bool = False,
    logs: Path | None = None,
    token_delay_ms: float = 0,
    env: dict[str, str] | None = None,
    lift_limits: bool = True,
) -> Iterator[BenchStack]:
    """One simulator, one api and one dispatcher against a fresh Redis and PostgreSQL.

    `env` goes to the api and dispatcher on top of the product defaults; with
    `lift_limits` false the plans keep their own rate limits (then give the accounts
    `rpm_override=0`, see `unlimit_account`).
    """
    with (
        tempfile.TemporaryDirectory(prefix="resayil-bench-") as workdir,
        start_postgres() as postgres,
        start_redis() as redis,
    ):
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
        stack = BenchStack(
            database_url=postgres.url,
            redis_url=redis.url,
            workdir=logs or Path(workdir),
            overrides=PRODUCT_DEFAULTS | ({} if failover else NO_FAILOVER) | (env or {}),
        )
        try:
            if lift_limits:
                lift_rate_limits(postgres.url)
            stack.start(local_slots=local_slots)
            stack.sim_config(
                token_delay_ms=token_delay_ms, tokens=ANSWER_TOKENS, num_parallel=sim_parallel
            )
            stack.service_pids = {
                name: pid
                for name, pid in (("redis", redis.pid), ("postgres", postgres.pid))
                if pid is not None
            }
            yield stack
        finally:
            stack.stop()


def unlimit_account(stack: Stack, account_id: int) -> None:
    """`rpm_override = 0`: no per-minute limit for this account (before its first request,
    so no cached limit is in the api's auth cache yet)."""
    with stack.session() as session, session.begin():
        session.execute(update(Account).where(Account.id == account_id).values(rpm_override=0))


def lift_rate_limits(database_url: str) -> None:
    """Raise every plan's limit far above what the bench sends, before the api starts.

    The limiter stays in the path (its Redis script is part of the gateway's cost);
    only its verdict must not turn the bench's thousands of requests into 429s.
    """
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(update(Plan).values(requests_per_minute=BENCH_RATE_LIMIT))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Books:
    sent: int
    usage_rows: int
    ok_rows: int
    cloud_rows: int  # local requests that overflowed to the cloud fallback
    charged: int
    balance: int
    ledger_sum: int
    initial: int
    waited_s: float

    @property
    def lost(self) -> int:
        return self.sent - self.usage_rows

    @property
    def balanced(self) -> bool:
        return self.balance == self.ledger_sum == self.initial - self.charged

    @property
    def sound(self) -> bool:
        return self.lost == 0 and self.balanced


def _usage_totals(stack: Stack, account_id: int) -> tuple[int, int, int, int]:
    """Usage rows: all, ok, served by the cloud pool, and the credits they charged."""
    with stack.session() as session:
        row = session.execute(
            select(
                func.count(UsageRecord.id),
                func.count(UsageRecord.id).filter(UsageRecord.status == "ok"),
                func.count(UsageRecord.id).filter(UsageRecord.pool == "cloud"),
                func.coalesce(func.sum(UsageRecord.credits_charged), 0),
            ).where(UsageRecord.account_id == account_id)
        ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def check_books(stack: Stack, *, account_id: int, sent: int, initial: int) -> Books:
    """Wait for settlement of `sent` requests, then compare usage rows and the ledger."""
    started = time.monotonic()
    deadline = started + SETTLE_TIMEOUT_S
    while _usage_totals(stack, account_id)[0] < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    waited = time.monotonic() - started
    time.sleep(0.2)  # a duplicate would arrive now, if settlement were not exactly-once
    rows, ok, cloud, charged = _usage_totals(stack, account_id)
    return Books(
        sent=sent,
        usage_rows=rows,
        ok_rows=ok,
        cloud_rows=cloud,
        charged=charged,
        balance=stack.balance(account_id),
        ledger_sum=stack.ledger_sum(account_id),
        initial=initial,
        waited_s=waited,
    )
