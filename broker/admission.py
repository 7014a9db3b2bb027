"""Admission of a chat request in one round trip: the account's rate limit, and the
load of the pool the request would join (what its placement starts from)."""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis

from broker import keys, scripts
from broker.limits import UNLIMITED, WINDOW_MS, RateDecision
from schema.messages import Pool


class Admission:
    def __init__(self, redis: Redis, window_ms: int = WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._script = redis.register_script(scripts.ADMIT)

    async def admit(
        self, account_id: int, limit: int, pool: Pool, *, backlog: bool
    ) -> tuple[RateDecision, int]:
        """Count the request against `limit` (0: unlimited) if it has room; with the
        pool's backlog (jobs waiting for a slot) when `backlog`, else its queued jobs."""
        result: Any = await self._script(
            keys=[
                keys.rate_window(account_id),
                keys.queue(pool),
                keys.inflight(pool),
                keys.slots(pool),
            ],
            args=[
                max(0, limit),
                self.window_ms,
                uuid.uuid4().hex,
                "backlog" if backlog else "queued",
            ],
        )
        allowed, remaining, reset_ms, load = (int(v) for v in result)
        decision = (
            RateDecision(bool(allowed), limit, remaining, reset_ms) if limit > 0 else UNLIMITED
        )
        return decision, load
