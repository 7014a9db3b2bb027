"""Where the usage report's buckets start and end, in the report's time zone.

Rollups are per UTC hour, so an hour belongs to the bucket its start falls in. In a
zone whose offset is whole hours (Asia/Kuwait, UTC+3) that is exact; in a half-hour
zone the hour that straddles local midnight counts for the day it starts in.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Periods:
    """Consecutive buckets: `starts` oldest first (in the report zone); the last ends at `end`."""

    starts: tuple[datetime, ...]
    end: datetime

    @property
    def since(self) -> datetime:
        return self.starts[0].astimezone(UTC)

    @property
    def until(self) -> datetime:
        return self.end.astimezone(UTC)

    def index_of(self, moment: datetime) -> int | None:
        """The bucket `moment` falls in, or None when it is outside all of them."""
        # Compared in UTC: aware datetimes of one zone compare by wall clock, not instant.
        moment = moment.astimezone(UTC)
        if not self.since <= moment < self.until:
            return None
        return bisect_right(self.utc_starts, moment) - 1

    @cached_property
    def utc_starts(self) -> tuple[datetime, ...]:
        return tuple(start.astimezone(UTC) for start in self.starts)


def hours(now: datetime, tz: ZoneInfo, count: int = 24) -> Periods:
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    bounds = [(current + timedelta(hours=n)).astimezone(tz) for n in range(1 - count, 2)]
    return Periods(tuple(bounds[:-1]), bounds[-1])


def days(now: datetime, tz: ZoneInfo, count: int = 30) -> Periods:
    today = now.astimezone(tz).date()
    return _periods([today + timedelta(days=n) for n in range(1 - count, 2)], tz)


def weeks(now: datetime, tz: ZoneInfo, count: int = 12) -> Periods:
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    return _periods([monday + timedelta(weeks=n) for n in range(1 - count, 2)], tz)


def months(now: datetime, tz: ZoneInfo, count: int = 12) -> Periods:
    today = now.astimezone(tz).date()
    index = today.year * 12 + today.month - 1  # months since year 0
    return _periods([date(i // 12, i % 12 + 1, 1) for i in range(index + 1 - count, index + 2)], tz)


def _periods(dates: list[date], tz: ZoneInfo) -> Periods:
    """Local midnights of `dates`: each starts a bucket, but the last, which ends them."""
    midnights = [datetime.combine(day, time(), tzinfo=tz) for day in dates]
    return Periods(tuple(midnights[:-1]), midnights[-1])
