"""The usage report's numbers, read from the hourly rollups in one statement.

One UNION ALL: per series, the sums per bucket from `usage_hourly_totals`, the database
putting each hour in its bucket; then the 30 days' sums per key, model and pool from
`usage_hourly`. One statement reads one snapshot, so a request settled while the report
is read shows in every part of it or in none (separate statements would each see the
data as of their own start under READ COMMITTED).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Select, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from portal.usage.periods import Periods
from schema.models import UsageHourly, UsageHourlyTotal

NO_KEY = 0
COUNTS = ("requests", "failed", "prompt_tokens", "completion_tokens", "credits")
PARTS = -1  # the `series` number of the rows per key, model and pool

Counts = tuple[int, ...]  # as COUNTS


class Part(NamedTuple):
    """Usage of one key, model and pool over the report's 30 days."""

    api_key_id: int
    model: str
    pool: str
    counts: Counts

    @property
    def requests(self) -> int:
        return self.counts[0]


@dataclass(frozen=True)
class Sums:
    series: list[dict[int, Counts]]  # per series: bucket number -> counts, empty ones left out
    parts: list[Part]


def read_sums(
    session: Session, *, account_id: int, series: Sequence[Periods], window: Periods
) -> Sums:
    statement = union_all(
        *(_per_bucket(account_id, number, buckets) for number, buckets in enumerate(series)),
        _per_part(account_id, window),
    )
    sums = Sums(series=[{} for _ in series], parts=[])
    for number, bucket, key_id, model, pool, *counts in session.execute(statement):
        if number == PARTS:
            sums.parts.append(Part(key_id, model, pool, _ints(counts)))
        else:
            sums.series[number][bucket] = _ints(counts)
    return sums


def zero() -> Counts:
    return (0,) * len(COUNTS)


def _per_bucket(account_id: int, number: int, buckets: Periods) -> Select[Any]:
    hourly = UsageHourlyTotal
    starts = list(enumerate(buckets.utc_starts))
    # The newest bucket start the hour is not before.
    index = case(*((hourly.hour >= start, i) for i, start in reversed(starts)), else_=0)
    inside = (
        select(index.label("bucket"), *(getattr(hourly, name) for name in COUNTS))
        .where(
            hourly.account_id == account_id,
            hourly.hour >= buckets.since,
            hourly.hour < buckets.until,
        )
        .subquery()
    )
    return select(
        literal(number),
        inside.c.bucket,
        literal(NO_KEY),
        literal(""),
        literal(""),
        *(func.sum(inside.c[name]) for name in COUNTS),
    ).group_by(inside.c.bucket)


def _per_part(account_id: int, window: Periods) -> Select[Any]:
    hourly = UsageHourly
    keys = (hourly.api_key_id, hourly.model, hourly.pool)
    return (
        select(
            literal(PARTS),
            literal(0),
            *keys,
            *(func.sum(getattr(hourly, name)) for name in COUNTS),
        )
        .where(
            hourly.account_id == account_id,
            hourly.hour >= window.since,
            hourly.hour < window.until,
        )
        .group_by(*keys)
    )


def _ints(values: Sequence[Any]) -> Counts:
    # PostgreSQL sums bigint columns as numeric (Decimal).
    return tuple(int(value or 0) for value in values)
