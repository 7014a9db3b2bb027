"""Failed logins counted per account and per client address, in sliding windows.

Both windows are checked before a password is even looked at, and every failure
counts in both, so guessing one account's password from many addresses, or many
accounts' passwords from one address, is slowed down alike.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from broker import scripts
from broker.keys import PREFIX


@dataclass(frozen=True)
class ThrottleLimits:
    per_account: int
    per_address: int
    window_s: int


def _account_window(email: str) -> str:
    # The email is hashed: Redis key names are not a place for personal data.
    return f"{PREFIX}:login-fail:account:{hashlib.sha256(email.encode()).hexdigest()}"


def _address_window(address: str) -> str:
    return f"{PREFIX}:login-fail:ip:{address}"


class LoginThrottle:
    def __init__(self, redis: Redis, limits: ThrottleLimits) -> None:
        self.redis = redis
        self.limits = limits
        self._script = redis.register_script(scripts.SLIDING_WINDOW)

    async def wait_s(self, *, email: str, address: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        waits = [
            await self._run(_account_window(email), self.limits.per_account, consume=False),
            await self._run(_address_window(address), self.limits.per_address, consume=False),
        ]
        return max(waits)

    async def record_failure(self, *, email: str, address: str) -> None:
        await self._run(_account_window(email), self.limits.per_account, consume=True)
        await self._run(_address_window(address), self.limits.per_address, consume=True)

    async def record_success(self, *, email: str) -> None:
        await self.redis.delete(_account_window(email))

    async def _run(self, key: str, limit: int, *, consume: bool) -> int:
        result: Any = await self._script(
            keys=[key],
            args=[limit, self.limits.window_s * 1000, uuid.uuid4().hex, "1" if consume else "0"],
        )
        allowed, _remaining, reset_ms = (int(v) for v in result)
        return 0 if allowed else max(1, -(-reset_ms // 1000))
