"""Admission of a chat request in one round trip: the check of the cached key entry it
was judged on, the account's rate limit, and the load of the pool the request would
join (what its placement starts from)."""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis

from broker import keys, scripts
from broker.auth_cache import AuthProof
from broker.limits import UNLIMITED, WINDOW_MS, RateDecision
from schema.messages import Pool

STALE = -1  # the script's verdict on a proof whose entry changed


class AuthEntryChanged(Exception):
    """The cached key entry the request was judged on is gone from Redis or different:
    nothing was counted; judge the request again on a fresh entry."""


class Admission:
    def __init__(self, redis: Redis, window_ms: int = WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._script = redis.register_script(scripts.ADMIT)

    async def admit(
        self,
        account_id: int,
        limit: int,
        pool: Pool,
        *,
        backlog: bool,
        proof: AuthProof | None = None,
    ) -> tuple[RateDecision, int]:
        """Count the request against `limit` (0: unlimited) if it has room; with the
        pool's backlog (jobs waiting for a slot) when `backlog`, else its queued jobs.

        With a `proof`, first check that its entry is still the one in Redis, and raise
        `AuthEntryChanged` (having counted nothing) when it is not.
        """
        window = keys.rate_window(account_id)
        result: Any = await self._script(
            keys=[
                window,
                keys.queue(pool),
                keys.inflight(pool),
                keys.slots(pool),
                proof.key if proof else window,
            ],
            args=[
                max(0, limit),
                self.window_ms,
                uuid.uuid4().hex,
                "backlog" if backlog else "queued",
                proof.payload if proof else b"",
            ],
        )
        allowed, remaining, reset_ms, load = (int(v) for v in result)
        if allowed == STALE:
            raise AuthEntryChanged
        decision = (
            RateDecision(bool(allowed), limit, remaining, reset_ms) if limit > 0 else UNLIMITED
        )
        return decision, load
