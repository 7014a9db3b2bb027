"""Cross-process once-per-period guards (sync client: used by RQ-side code)."""

from __future__ import annotations

from redis import Redis

from broker.keys import PREFIX


def claim_period(redis: Redis, name: str, period_s: int, now_s: float) -> bool:
    """True for exactly one caller per `name` and period, across all processes."""
    slot = int(now_s // period_s)
    return bool(redis.set(f"{PREFIX}:period:{name}:{slot}", "1", nx=True, ex=period_s * 2))
