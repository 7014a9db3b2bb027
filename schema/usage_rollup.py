"""Hourly usage rollups, written with the usage rows they count.

`settle` hands over exactly the settlements whose usage row it has just inserted, so a
request settled twice is counted once. They are summed per bucket here, then added to
`usage_hourly` with one INSERT ... ON CONFLICT DO UPDATE in primary-key order: concurrent
settlers lock the rows they share in the same order and cannot deadlock on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from schema.messages import Settlement
from schema.models import UsageHourly

NO_KEY = 0
KEY_COLUMNS = ("account_id", "hour", "api_key_id", "model", "pool")
COUNT_COLUMNS = ("requests", "failed", "prompt_tokens", "completion_tokens", "credits")

BucketKey = tuple[int, datetime, int, str, str]


def settled_at(item: Settlement) -> datetime:
    """When a request's usage row says it happened (its `created_at`)."""
    return datetime.fromtimestamp(item.finished_at_ms / 1000, UTC)


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def add(session: Session, settlements: Iterable[Settlement]) -> None:
    """Add newly written usage rows to their hourly buckets. Caller commits."""
    totals = _sum_by_bucket(settlements)
    if not totals:
        return
    rows = [
        dict(zip(KEY_COLUMNS, key, strict=True)) | dict(zip(COUNT_COLUMNS, counts, strict=True))
        for key, counts in sorted(totals.items())
    ]
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(UsageHourly).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={
            name: getattr(UsageHourly, name) + getattr(statement.excluded, name)
            for name in COUNT_COLUMNS
        },
    )
    session.execute(statement)


def _sum_by_bucket(settlements: Iterable[Settlement]) -> dict[BucketKey, list[int]]:
    totals: dict[BucketKey, list[int]] = {}
    for item in settlements:
        key = (
            item.account_id,
            hour_of(settled_at(item)),
            item.api_key_id or NO_KEY,
            item.model_requested,
            item.pool,
        )
        counts = totals.setdefault(key, [0] * len(COUNT_COLUMNS))
        counts[0] += 1
        counts[1] += item.status != "ok"
        counts[2] += item.prompt_tokens
        counts[3] += item.completion_tokens
        counts[4] += item.credits_charged
    return totals
