"""The settlement stream: every finished job's outcome, consumed by settlers that
write usage rows and refunds. A Redis stream with a consumer group, so an entry
read by a settler that dies before committing is claimed again by another.

Every settlement that gives credits back also rings the refund bell (a list holding at
most one item): a settler holding a batch for its interval waits on the bell, not on
the stream, so it is woken by a refund but not by each settlement."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from broker import keys, scripts
from schema.messages import Settlement

Entry = tuple[bytes, Settlement]
RECLAIM_CHECK_S = 1.0


class SettlementStream:
    def __init__(self, redis: Redis, consumer: str, *, reclaim_after_ms: int = 30_000) -> None:
        self.redis = redis
        self.consumer = consumer
        self.reclaim_after_ms = reclaim_after_ms
        self.reclaim_every_s = min(RECLAIM_CHECK_S, reclaim_after_ms / 2000)
        self._next_reclaim = 0.0
        self._settle = redis.register_script(scripts.SETTLE)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(
                keys.SETTLEMENTS, keys.SETTLERS_GROUP, id="0", mkstream=True
            )
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def push(self, settlement: Settlement) -> None:
        """A settlement written as the queue's scripts write theirs (bell included)."""
        await self._settle(
            keys=[keys.SETTLEMENTS, keys.REFUND_BELL], args=[settlement.model_dump_json()]
        )

    async def refund_rung(self, *, timeout_s: float) -> bool:
        """Whether a refund was settled (since the bell was last answered) within
        `timeout_s`."""
        rung: Any = await self.redis.blpop([keys.REFUND_BELL], timeout=timeout_s)
        return rung is not None

    async def read(self, *, count: int = 200, block_ms: int | None = 1000) -> list[Entry]:
        """Entries abandoned by dead settlers first (looked for at most every
        `reclaim_every_s`), then new ones, waiting up to `block_ms` for one (None: not
        at all)."""
        if time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + self.reclaim_every_s
            claimed: Any = await self.redis.xautoclaim(
                keys.SETTLEMENTS,
                keys.SETTLERS_GROUP,
                self.consumer,
                min_idle_time=self.reclaim_after_ms,
                count=count,
            )
            stale = claimed[1]
            if stale:
                self._next_reclaim = 0.0  # there may be more
                return _parse(stale)
        response: Any = await self.redis.xreadgroup(
            keys.SETTLERS_GROUP,
            self.consumer,
            {keys.SETTLEMENTS: ">"},
            count=count,
            block=block_ms,
        )
        return [entry for _stream, entries in response for entry in _parse(entries)]

    async def ack(self, entry_ids: list[bytes]) -> None:
        if entry_ids:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(keys.SETTLEMENTS, keys.SETTLERS_GROUP, *entry_ids)
                pipe.xdel(keys.SETTLEMENTS, *entry_ids)
                await pipe.execute()

    async def pending(self) -> int:
        return int(await self.redis.xlen(keys.SETTLEMENTS))


def _parse(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Entry]:
    return [
        (entry_id, Settlement.model_validate_json(fields[b"settlement"]))
        for entry_id, fields in entries
        if fields and b"settlement" in fields
    ]
