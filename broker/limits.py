"""Per-account request rate limits: a sliding window evaluated atomically in Redis.

Unlike a fixed window, a burst straddling a minute boundary cannot pass twice the
limit: every admission stays counted for exactly `window_ms` after it happened.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from broker import keys, scripts

WINDOW_MS = 60_000


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int  # 0 means unlimited
    remaining: int
    reset_ms: int

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.reset_ms / 1000))

    def headers(self) -> dict[str, str]:
        if self.limit == 0:
            return {}
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{self.reset_ms / 1000:.3f}s".replace(".000s", "s"),
        }


UNLIMITED = RateDecision(True, 0, 0, 0)


class RateLimiter:
    def __init__(self, redis: Redis, window_ms: int = WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._script = redis.register_script(scripts.SLIDING_WINDOW)

    async def take(self, account_id: int, limit: int) -> RateDecision:
        """Count one request if the window has room; `limit` 0 is unlimited."""
        return await self._run(account_id, limit, consume=True)

    async def peek(self, account_id: int, limit: int) -> RateDecision:
        return await self._run(account_id, limit, consume=False)

    async def _run(self, account_id: int, limit: int, *, consume: bool) -> RateDecision:
        if limit <= 0:
            return UNLIMITED
        result: Any = await self._script(
            keys=[keys.rate_window(account_id)],
            args=[limit, self.window_ms, uuid.uuid4().hex, "1" if consume else "0"],
        )
        allowed, remaining, reset_ms = (int(v) for v in result)
        return RateDecision(bool(allowed), limit, remaining, reset_ms)
