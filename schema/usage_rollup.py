"""Hourly usage rollups, written with the usage rows they count.

`settle` hands over exactly the settlements whose usage row it has just inserted, so a
request settled twice is counted once. They are summed here per bucket of each rollup
(`usage_hourly`: account, hour, key, model, pool; `usage_hourly_totals`: account, hour),
then added with one INSERT ... ON CONFLICT DO UPDATE per table, rows in primary-key
order and tables in one order: concurrent settlers lock the rows they share in the same
order and cannot deadlock on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from schema.db import upsert_insert
from schema.messages import Settlement
from schema.models import UsageHourly, UsageHourlyTotal

NO_KEY = 0
KEY_COLUMNS = ("account_id", "hour", "api_key_id", "model", "pool")
TOTAL_KEY_COLUMNS = ("account_id", "hour")
COUNT_COLUMNS = ("requests", "failed", "prompt_tokens", "completion_tokens", "credits")

Sums = dict[tuple[Any, ...], list[int]]


def settled_at(item: Settlement) -> datetime:
    """When a request's usage row says it happened (its `created_at`)."""
    return datetime.fromtimestamp(item.finished_at_ms / 1000, UTC)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def add(session: Session, settlements: Iterable[Settlement]) -> None:
    """Add newly written usage rows to their hourly buckets. Caller commits."""
    by_bucket: Sums = {}
    for item in settlements:
        key = (
            item.account_id,
            hour_of(settled_at(item)),
            item.api_key_id or NO_KEY,
            item.model_requested,
            item.pool,
        )
        _add_to(
            by_bucket,
            key,
            (
                1,
                int(item.status != "ok"),
                item.prompt_tokens,
                item.completion_tokens,
                item.credits_charged,
            ),
        )
    by_hour: Sums = {}
    for (account_id, hour, *_rest), counts in by_bucket.items():
        _add_to(by_hour, (account_id, hour), counts)
    _upsert(session, UsageHourly, KEY_COLUMNS, by_bucket)
    _upsert(session, UsageHourlyTotal, TOTAL_KEY_COLUMNS, by_hour)


def _add_to(sums: Sums, key: tuple[Any, ...], counts: Iterable[int]) -> None:
    total = sums.setdefault(key, [0] * len(COUNT_COLUMNS))
    for i, value in enumerate(counts):
        total[i] += value


def _upsert(
    session: Session,
    table: type[UsageHourly | UsageHourlyTotal],
    key_columns: tuple[str, ...],
    sums: Sums,
) -> None:
    if not sums:
        return
    rows = [
        dict(zip(key_columns, key, strict=True)) | dict(zip(COUNT_COLUMNS, counts, strict=True))
        for key, counts in sorted(sums.items())
    ]
    # One statement, parameters per row: compiled once and cached, run as a batch.
    columns = table.__table__.c
    statement = upsert_insert(session)(table.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={name: columns[name] + statement.excluded[name] for name in COUNT_COLUMNS},
    )
    session.execute(statement, rows)
