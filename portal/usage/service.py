"""An account's usage and balance, as the dashboard shows them.

Everything is read from the hourly rollups, never from the raw usage rows, and always
for one account: per series (24 hours, 30 days, 12 weeks, 12 months) one query on
`usage_hourly_totals` in which the database puts each hour in its bucket (bounds from
`portal.usage.periods`, in the report's time zone); one on `usage_hourly` for the 30
days by key, model and pool; one for the keys' labels. Every bucket is there, empty
ones as zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from portal.exceptions import NotFound
from portal.usage import periods
from portal.usage.periods import Periods
from schema.models import Account, ApiKey, CreditEntry, UsageHourly, UsageHourlyTotal

NO_KEY = 0
GRANT_KINDS = ("grant", "purchase")
COUNTS = ("requests", "failed", "prompt_tokens", "completion_tokens", "credits")


@dataclass(frozen=True)
class Bucket:
    start: datetime  # tz-aware, in the report tz
    requests: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    credits: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ModelUsage:
    model: str
    requests: int
    local_requests: int
    cloud_requests: int
    prompt_tokens: int
    completion_tokens: int
    credits: int


@dataclass(frozen=True)
class KeyUsage:
    api_key_id: int  # 0 = requests without a key
    label: str
    prefix: str
    deleted: bool
    requests: int
    prompt_tokens: int
    completion_tokens: int
    credits: int


@dataclass(frozen=True)
class UsageReport:
    hours: list[Bucket]  # 24, oldest first, the last one is the current hour
    days: list[Bucket]  # 30, oldest first, the last one is today (report tz)
    weeks: list[Bucket]  # 12 ISO weeks (Monday start), oldest first, last = this week
    months: list[Bucket]  # 12 calendar months, oldest first, last = this month
    by_model: list[ModelUsage]  # over the 30 days of `days`, most requests first, then model
    by_key: list[KeyUsage]  # over the same 30 days, most requests first
    totals: Bucket  # over the same 30 days (start = first day)


@dataclass(frozen=True)
class Balance:
    remaining: int  # accounts.credit_balance
    total_granted: int  # sum of ledger amounts of kind grant or purchase


def usage_report(session: Session, *, account_id: int, now: datetime, tz: ZoneInfo) -> UsageReport:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    window = periods.days(now, tz)
    parts = _per_key_and_model(session, account_id=account_id, window=window)
    return UsageReport(
        hours=_series(session, account_id=account_id, buckets=periods.hours(now, tz)),
        days=_series(session, account_id=account_id, buckets=window),
        weeks=_series(session, account_id=account_id, buckets=periods.weeks(now, tz)),
        months=_series(session, account_id=account_id, buckets=periods.months(now, tz)),
        by_model=_by_model(parts),
        by_key=_by_key(session, account_id=account_id, parts=parts),
        totals=Bucket(window.starts[0], *_sum(part.counts for part in parts)),
    )


def balance(session: Session, *, account_id: int) -> Balance:
    remaining = session.scalar(select(Account.credit_balance).where(Account.id == account_id))
    if remaining is None:
        raise NotFound(f"No account {account_id}.", code="account_not_found")
    granted = session.scalar(
        select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
            CreditEntry.account_id == account_id, CreditEntry.kind.in_(GRANT_KINDS)
        )
    )
    return Balance(remaining=remaining, total_granted=int(granted or 0))


def _series(session: Session, *, account_id: int, buckets: Periods) -> list[Bucket]:
    hourly = UsageHourlyTotal
    starts = list(enumerate(buckets.utc_starts))
    # The database puts each hour in its bucket: the newest bucket start it is not before.
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
    rows = session.execute(
        select(inside.c.bucket, *(func.sum(inside.c[name]) for name in COUNTS)).group_by(
            inside.c.bucket
        )
    )
    sums = {row[0]: _ints(row[1:]) for row in rows}
    return [Bucket(start, *sums.get(i, _sum([]))) for i, start in enumerate(buckets.starts)]


class _Part(NamedTuple):
    """Usage of one key, model and pool over the report's 30 days."""

    api_key_id: int
    model: str
    pool: str
    counts: tuple[int, ...]  # as COUNTS

    @property
    def requests(self) -> int:
        return self.counts[0]


def _per_key_and_model(session: Session, *, account_id: int, window: Periods) -> list[_Part]:
    keys = (UsageHourly.api_key_id, UsageHourly.model, UsageHourly.pool)
    rows = session.execute(
        select(*keys, *(func.sum(getattr(UsageHourly, name)) for name in COUNTS))
        .where(
            UsageHourly.account_id == account_id,
            UsageHourly.hour >= window.since,
            UsageHourly.hour < window.until,
        )
        .group_by(*keys)
    )
    return [_Part(row[0], row[1], row[2], _ints(row[3:])) for row in rows]


def _sum(rows: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    totals = [0] * len(COUNTS)
    for row in rows:
        for i, value in enumerate(row):
            totals[i] += value
    return tuple(totals)


def _by_model(parts: list[_Part]) -> list[ModelUsage]:
    models: dict[str, list[_Part]] = {}
    for part in parts:
        models.setdefault(part.model, []).append(part)
    usage = [
        ModelUsage(
            model,
            sum(p.requests for p in rows),
            sum(p.requests for p in rows if p.pool == "local"),
            sum(p.requests for p in rows if p.pool == "cloud"),
            *_sum(p.counts for p in rows)[2:],
        )
        for model, rows in models.items()
    ]
    return sorted(usage, key=lambda m: (-m.requests, m.model))


def _by_key(session: Session, *, account_id: int, parts: list[_Part]) -> list[KeyUsage]:
    keys: dict[int, list[_Part]] = {}
    for part in parts:
        keys.setdefault(part.api_key_id, []).append(part)
    labels = _key_labels(session, account_id=account_id, key_ids=keys.keys() - {NO_KEY})
    usage = []
    for key_id, rows in keys.items():
        # No label: requests without a key, or a key whose row is gone (so deleted).
        label, prefix, deleted = labels.get(key_id, ("", "", key_id != NO_KEY))
        requests, _failed, prompt, completion, credits = _sum(p.counts for p in rows)
        usage.append(
            KeyUsage(key_id, label, prefix, deleted, requests, prompt, completion, credits)
        )
    return sorted(usage, key=lambda k: (-k.requests, k.api_key_id))


def _key_labels(
    session: Session, *, account_id: int, key_ids: Iterable[int]
) -> dict[int, tuple[str, str, bool]]:
    """label, prefix and deleted of the account's keys, deleted ones included."""
    wanted = sorted(key_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(ApiKey.id, ApiKey.label, ApiKey.prefix, ApiKey.deleted_at).where(
            ApiKey.account_id == account_id, ApiKey.id.in_(wanted)
        )
    )
    return {key_id: (label, prefix, deleted is not None) for key_id, label, prefix, deleted in rows}


def _ints(values: Sequence[Any]) -> tuple[int, ...]:
    # PostgreSQL sums bigint columns as numeric (Decimal).
    return tuple(int(value or 0) for value in values)
