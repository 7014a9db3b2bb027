"""The platform-wide daily cloud budget: an atomic counter per day, capped.

The counter lives in Redis for speed and atomicity; its high-water mark is also
persisted in the database (by the caller, through `persist`), and a counter that
Redis lost is restored from there before it is used again, so a restart does not
reset the day.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from broker import keys, scripts

DAY_TTL_S = 3 * 86_400
RESTORE = -2
EXHAUSTED = -1

LoadPersisted = Callable[[str], Awaitable[int]]


@dataclass(frozen=True)
class BudgetDay:
    day: str  # YYYY-MM-DD in the budget's time zone
    seconds_left: int  # until the next day starts there


def budget_day(now: datetime, zone: str) -> BudgetDay:
    local = now.astimezone(ZoneInfo(zone))
    tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return BudgetDay(local.date().isoformat(), max(1, int((tomorrow - local).total_seconds())))


class CloudBudget:
    def __init__(self, redis: Redis, load_persisted: LoadPersisted) -> None:
        self.redis = redis
        self._load_persisted = load_persisted
        self._take = redis.register_script(scripts.BUDGET_TAKE)
        self._restore = redis.register_script(scripts.BUDGET_RESTORE)
        self._give_back = redis.register_script(scripts.BUDGET_GIVE_BACK)

    async def restore(self, day: str) -> None:
        persisted = await self._load_persisted(day)
        await self._restore(keys=[keys.cloud_budget(day)], args=[persisted, DAY_TTL_S])

    async def take(self, day: str, cap: int) -> int | None:
        """The day's new count, or None when the cap is reached."""
        for _ in range(2):
            result: Any = await self._take(keys=[keys.cloud_budget(day)], args=[cap, DAY_TTL_S])
            if int(result) != RESTORE:
                return None if int(result) == EXHAUSTED else int(result)
            await self.restore(day)
        raise RuntimeError("the cloud budget counter could not be restored")

    async def give_back(self, day: str) -> None:
        result: Any = await self._give_back(keys=[keys.cloud_budget(day)])
        if int(result) == RESTORE:
            await self.restore(day)
            await self._give_back(keys=[keys.cloud_budget(day)])

    async def used(self, day: str) -> int:
        value = await self.redis.get(keys.cloud_budget(day))
        if value is None:
            return await self._load_persisted(day)
        return int(value)
