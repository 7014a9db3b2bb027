"""An account's usage and balance, as the dashboard shows them.

Usage is read from the hourly rollups, never from the raw usage rows, and always for
one account: the sums per bucket of every series (24 hours, 30 days, 12 weeks, 12 months,
bounds from `portal.usage.periods` in the report's time zone) and per key, model and
pool over the 30 days in one statement (`portal.usage.sums`), then the keys' labels.
Every bucket is there, empty ones as zeros.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.exceptions import NotFound
from portal.usage import periods
from portal.usage.sums import COUNTS, NO_KEY, Part, read_sums, zero
from schema.models import Account, ApiKey, CreditEntry

GRANT_KINDS = ("grant", "purchase")


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
    window = series[1]
    sums = read_sums(session, account_id=account_id, series=series, window=window)
    hours, days, weeks, months = (
        [Bucket(start, *found.get(i, zero())) for i, start in enumerate(buckets.starts)]
        for buckets, found in zip(series, sums.series, strict=True)
    )
    return UsageReport(
        hours=hours,
        days=days,
        weeks=weeks,
        months=months,
        by_model=_by_model(sums.parts),
        by_key=_by_key(session, account_id=account_id, parts=sums.parts),
        totals=Bucket(window.starts[0], *_sum(part.counts for part in sums.parts)),
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


def _sum(rows: Iterable[tuple[int, ...]]) -> tuple[int, ...]:
    totals = [0] * len(COUNTS)
    for row in rows:
        for i, value in enumerate(row):
            totals[i] += value
    return tuple(totals)


def _by_model(parts: list[Part]) -> list[ModelUsage]:
    models: dict[str, list[Part]] = {}
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


def _by_key(session: Session, *, account_id: int, parts: list[Part]) -> list[KeyUsage]:
    keys: dict[int, list[Part]] = {}
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
