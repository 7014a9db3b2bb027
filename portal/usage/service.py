"""An account's usage and balance, as the dashboard shows them.

Everything is read from the hourly rollups (`usage_hourly`), never from the raw usage
rows, and always for one account: one query for the time series (summed per hour over
the longest period shown), one for the last 30 days by key, model and pool, one for the
keys' labels. Buckets are then filled in Python, in the report's time zone (see
`portal.usage.periods`), every bucket present, empty ones as zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.exceptions import NotFound
from portal.usage import periods
from portal.usage.periods import Periods
from schema.models import Account, ApiKey, CreditEntry, UsageHourly

NO_KEY = 0
GRANT_KINDS = ("grant", "purchase")
# requests, failed, prompt_tokens, completion_tokens, credits
COUNTS = (
    UsageHourly.requests,
    UsageHourly.failed,
    UsageHourly.prompt_tokens,
    UsageHourly.completion_tokens,
    UsageHourly.credits,
)


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
    series = (
        periods.hours(now, tz),
        periods.days(now, tz),
        periods.weeks(now, tz),
        periods.months(now, tz),
    )
    hourly = _per_hour(
        session,
        account_id=account_id,
        since=min(p.since for p in series),
        until=max(p.until for p in series),
    )
    hours, days, weeks, months = (_fill(p, hourly) for p in series)
    window = series[1]
    parts = _per_key_and_model(session, account_id=account_id, window=window)
    return UsageReport(
        hours=hours,
        days=days,
        weeks=weeks,
        months=months,
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


def _per_hour(
    session: Session, *, account_id: int, since: datetime, until: datetime
) -> list[tuple[datetime, tuple[int, ...]]]:
    rows = session.execute(
        select(UsageHourly.hour, *(func.sum(column) for column in COUNTS))
        .where(
            UsageHourly.account_id == account_id,
            UsageHourly.hour >= since,
            UsageHourly.hour < until,
        )
        .group_by(UsageHourly.hour)
    )
    return [(_utc(row[0]), _ints(row[1:])) for row in rows]


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
        select(*keys, *(func.sum(column) for column in COUNTS))
        .where(
            UsageHourly.account_id == account_id,
            UsageHourly.hour >= window.since,
            UsageHourly.hour < window.until,
        )
        .group_by(*keys)
    )
    return [_Part(row[0], row[1], row[2], _ints(row[3:])) for row in rows]


def _fill(buckets: Periods, hourly: Iterable[tuple[datetime, tuple[int, ...]]]) -> list[Bucket]:
    inside: list[list[tuple[int, ...]]] = [[] for _ in buckets.starts]
    for hour, counts in hourly:
        index = buckets.index_of(hour)
        if index is not None:
            inside[index].append(counts)
    return [Bucket(start, *_sum(rows)) for start, rows in zip(buckets.starts, inside, strict=True)]


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


def _utc(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive (in UTC).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ints(values: Sequence[Any]) -> tuple[int, ...]:
    # PostgreSQL sums bigint columns as numeric (Decimal).
    return tuple(int(value or 0) for value in values)
