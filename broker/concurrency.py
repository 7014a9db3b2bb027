"""Per-account concurrency: how many of an account's requests may be in flight at once."""

from __future__ import annotations

from redis.asyncio import Redis

from broker import keys, scripts


class AccountSlots:
    def __init__(self, redis: Redis, *, ttl_ms: int) -> None:
        self.redis = redis
        self.ttl_ms = ttl_ms
        self._acquire = redis.register_script(scripts.ACCOUNT_SLOT)

    async def acquire(self, account_id: int, job_id: str, cap: int) -> bool:
        """Take one of the account's `cap` slots (0 = no cap) for this job."""
        if cap <= 0:
            return True
        taken = await self._acquire(
            keys=[keys.account_running(account_id)], args=[cap, job_id, self.ttl_ms]
        )
        return bool(taken)

    async def release(self, account_id: int, job_id: str) -> None:
        await self.redis.zrem(keys.account_running(account_id), job_id)
