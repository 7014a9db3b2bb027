"""The dashboard scenario: one heavy account's usage report among millions of usage rows.

On a throwaway PostgreSQL, seeded by `bench.dashboard_seed`, it times what the dashboard
does on every page view, `usage_report` + `balance` (from the hourly rollups), against
the same two aggregations straight from `usage_records` through its (account_id,
created_at) index: per UTC hour over the report's longest period, and per key, model and
pool over its 30 days. The raw path is timed as SQL only, without the Python that turns
its rows into buckets, so its figure flatters it.

The raw rows, bucketed by `portal.usage.periods`, must equal the report, bucket by
bucket, model by model and key by key; a mismatch fails the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.dashboard_seed import MODELS, Seeded, seed
from bench.report import percentile
from portal.usage import periods
from portal.usage.service import Balance, UsageReport, balance, usage_report
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from schema.models import UsageRecord
from tests.services import start_postgres

REPORT_TZ = ZoneInfo("Asia/Kuwait")
WARMUP_RUNS = 3
T = TypeVar("T")

SERIES = (
    ("hours", periods.hours),
    ("days", periods.days),
    ("weeks", periods.weeks),
    ("months", periods.months),
)
# (requests, failed, prompt tokens, completion tokens, credits) per UTC hour, and per
# (key, model, pool) over the report's 30 days.
HourRows = list[tuple[datetime, tuple[int, ...]]]
PartRows = dict[tuple[int, str, str], tuple[int, ...]]


@dataclass(frozen=True)
class DashboardConfig:
    rows: int = 2_000_000
    days: int = 90
    accounts: int = 200
    keys_per_account: int = 4
    heavy_share: float = 0.2
    runs: int = 100
    raw_runs: int = 5


@dataclass(frozen=True)
class DashboardRun:
    config: DashboardConfig
    seeded: Seeded
    rollup_ms: list[float]
    raw_ms: list[float]
    mismatches: list[str]
    load_before: float
    load_after: float

    @property
    def sound(self) -> bool:
        return not self.mismatches


def run_dashboard(config: DashboardConfig, *, load_before: float) -> DashboardRun:
    with start_postgres() as postgres:
        upgrade(postgres.url)
        engine = make_engine(postgres.url)
        try:
            seeded = seed(
                engine,
                rows=config.rows,
                days=config.days,
                accounts=config.accounts,
                keys_per_account=config.keys_per_account,
                heavy_share=config.heavy_share,
            )
            sessions = make_session_factory(engine)
            account = seeded.heavy_account_id
            now = datetime.now(UTC)
            rollup_ms, report = timed(config.runs, lambda: rollup_path(sessions, account, now))
            raw_ms, raw = timed(config.raw_runs, lambda: raw_path(sessions, account, now))
        finally:
            engine.dispose()
    return DashboardRun(
        config=config,
        seeded=seeded,
        rollup_ms=rollup_ms,
        raw_ms=raw_ms,
        mismatches=compare(report, raw, now),
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def timed(runs: int, work: Callable[[], T]) -> tuple[list[float], T]:
    """`work()` run untimed a few times, then timed `runs` times: (ms each, last result)."""
    for _ in range(WARMUP_RUNS):
        result = work()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def rollup_path(
    sessions: sessionmaker[Session], account_id: int, now: datetime
) -> tuple[UsageReport, Balance]:
    """A dashboard page view's reads: what the portal does."""
    with sessions() as session:
        report = usage_report(session, account_id=account_id, now=now, tz=REPORT_TZ)
        return report, balance(session, account_id=account_id)


def raw_path(
    sessions: sessionmaker[Session], account_id: int, now: datetime
) -> tuple[HourRows, PartRows, Balance]:
    """The same aggregations from the raw usage rows (SQL only)."""
    longest, days = periods.months(now, REPORT_TZ), periods.days(now, REPORT_TZ)
    usage = UsageRecord
    sums = (
        func.count(),
        func.count().filter(usage.status != "ok"),
        func.sum(usage.prompt_tokens),
        func.sum(usage.completion_tokens),
        func.sum(usage.credits_charged),
    )
    hour = func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", usage.created_at)))
    key = func.coalesce(usage.api_key_id, 0)
    with sessions() as session:
        hourly = session.execute(
            select(hour, *sums)
            .where(
                usage.account_id == account_id,
                usage.created_at >= longest.since,
                usage.created_at < longest.until,
            )
            .group_by(hour)
        )
        hours = [(row[0].astimezone(UTC), _ints(row[1:])) for row in hourly]
        parts = session.execute(
            select(key, usage.model_requested, usage.pool, *sums)
            .where(
                usage.account_id == account_id,
                usage.created_at >= days.since,
                usage.created_at < days.until,
            )
            .group_by(key, usage.model_requested, usage.pool)
        )
        by_part = {(row[0], row[1], row[2]): _ints(row[3:]) for row in parts}
        return hours, by_part, balance(session, account_id=account_id)


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(value or 0) for value in values)


def compare(
    rollup: tuple[UsageReport, Balance], raw: tuple[HourRows, PartRows, Balance], now: datetime
) -> list[str]:
    """Where the report differs from the raw rows, bucketed the same way ([] when nowhere)."""
    (report, rollup_balance), (hours, parts, raw_balance) = rollup, raw
    mismatches = [] if rollup_balance == raw_balance else ["balance"]
    for name, made in SERIES:
        buckets = made(now, REPORT_TZ)
        expected = [_sum([]) for _ in buckets.starts]
        for hour, counts in hours:
            index = buckets.index_of(hour)
            if index is not None:
                expected[index] = _sum([expected[index], counts])
        got = [astuple(bucket)[1:] for bucket in getattr(report, name)]
        mismatches += [f"{name}[{i}]" for i in range(len(got)) if got[i] != expected[i]]
    if {m.model: astuple(m)[1:] for m in report.by_model} != _by_model(parts):
        mismatches.append("by_model")
    if {k.api_key_id: astuple(k)[4:] for k in report.by_key} != _by_key(parts):
        mismatches.append("by_key")
    return mismatches


def _sum(rows: list[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*rows, strict=True)) if rows else (0,) * 5


def _by_model(parts: PartRows) -> dict[str, tuple[int, ...]]:
    """requests, local, cloud, prompt tokens, completion tokens, credits per model."""
    models: dict[str, list[tuple[int, ...]]] = {}
    for (_key, model, pool), (requests, _failed, *rest) in parts.items():
        local, cloud = (requests, 0) if pool == "local" else (0, requests)
        models.setdefault(model, []).append((requests, local, cloud, *rest))
    return {model: tuple(map(sum, zip(*rows, strict=True))) for model, rows in models.items()}


def _by_key(parts: PartRows) -> dict[int, tuple[int, ...]]:
    """requests, prompt tokens, completion tokens, credits per key."""
    keys: dict[int, list[tuple[int, ...]]] = {}
    for (key, _model, _pool), (requests, _failed, *rest) in parts.items():
        keys.setdefault(key, []).append((requests, *rest))
    return {key: tuple(map(sum, zip(*rows, strict=True))) for key, rows in keys.items()}


HEADER = (
    f"{'path':<7} {'reads':<21} {'table rows':>11} {'account rows':>12} {'runs':>5} "
    f"{'p50':>9} {'p99':>9} {'max':>9}"
)


def report(run: DashboardRun) -> tuple[str, dict[str, Any]]:
    """The printed text and the JSON document."""
    config, seeded = run.config, run.seeded
    rollup_p50, raw_p50 = percentile(run.rollup_ms, 50), percentile(run.raw_ms, 50)
    heading = (
        f"resayil dashboard: {os.cpu_count()} cores (load average {run.load_before:.1f} "
        f"before, {run.load_after:.1f} after); {seeded.rows:,} usage rows over {config.days} "
        f"days, {config.accounts} accounts x {config.keys_per_account} keys, {len(MODELS)} "
        f"models, {seeded.ledger_rows:,} ledger rows (seeded in {seeded.seed_s:.1f} s); "
        f"rollups built in {seeded.rollup_s:.1f} s, VACUUM ANALYZE {seeded.vacuum_s:.1f} s; "
        f"usage_report + balance of the heavy account ({seeded.heavy_rows / seeded.rows:.0%} "
        f"of the rows) in {REPORT_TZ.key}; raw = the same aggregations from usage_records, "
        f"SQL only; times in ms"
    )
    lines = [HEADER, "-" * len(HEADER)]
    for path, table, rows, account_rows, times in (
        (
            "rollup",
            "usage_hourly_totals",
            seeded.total_rows,
            seeded.heavy_total_rows,
            run.rollup_ms,
        ),
        ("", "+ usage_hourly", seeded.rollup_rows, seeded.heavy_rollup_rows, []),
        ("raw", "usage_records", seeded.rows, seeded.heavy_rows, run.raw_ms),
    ):
        figures = (
            f" {len(times):>5} {percentile(times, 50):>9.2f} {percentile(times, 99):>9.2f}"
            f" {max(times):>9.2f}"
            if times
            else ""
        )
        lines.append(f"{path:<7} {table:<21} {rows:>11,} {account_rows:>12,}{figures}")
    lines.append(f"{'ratio':<7} raw/rollup p50 {raw_p50 / rollup_p50:.1f}x")
    check = "the report equals the raw rows bucketed the same way (every bucket, model, key)"
    verdict = f"check: {check}: " + ("OK" if run.sound else "MISMATCH " + ", ".join(run.mismatches))
    document = {
        "config": asdict(run.config),
        "seeded": asdict(run.seeded),
        "rollup_ms": run.rollup_ms,
        "raw_ms": run.raw_ms,
        "rollup_p50_ms": rollup_p50,
        "raw_p50_ms": raw_p50,
        "mismatches": run.mismatches,
        "load_average": [run.load_before, run.load_after],
    }
    return "\n\n".join([heading, "\n".join(lines), verdict]), document
