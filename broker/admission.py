"""Admission of a chat request in one round trip: the check of the cached key entry it
was judged on, the account's rate limit, and either the load of the pool the request
would join (what its placement starts from) or, for a local request, its enqueue."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from broker import keys, scripts
from broker.auth_cache import AuthProof
from broker.limits import UNLIMITED, WINDOW_MS, RateDecision
from broker.queue import JobQueue
from schema.messages import ChatJob, Pool

STALE = -1  # the script's verdict on a proof whose entry changed


class AuthEntryChanged(Exception):
    """The cached key entry the request was judged on is gone from Redis or different:
    nothing was counted; judge the request again on a fresh entry."""


@dataclass(frozen=True)
class Admitted:
    """A local request admitted (or refused, `decision.allowed` false) at its enqueue.

    `enqueued`: queued or handed to a dispatcher, unpaid. `near`: not enqueued, as the
    pool's backlog (`load`) is within one waiter of the failover threshold. `full`: not
    enqueued, the queue holds `load` jobs, its cap."""

    decision: RateDecision
    outcome: Literal["enqueued", "near", "full", "refused"]
    load: int


class Admission:
    def __init__(self, redis: Redis, window_ms: int = WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._admit = redis.register_script(scripts.ADMIT)
        self._admit_and_enqueue = redis.register_script(scripts.ADMIT_AND_ENQUEUE)

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
        check_keys, check_args = self._check(account_id, limit, proof)
        result: Any = await self._admit(
            keys=[*check_keys, keys.queue(pool), keys.inflight(pool), keys.slots(pool)],
            args=[*check_args, "backlog" if backlog else "queued"],
        )
        allowed, remaining, reset_ms, load = (int(v) for v in result)
        return _decision(allowed, remaining, reset_ms, limit), load

    async def admit_and_enqueue(
        self,
        job: ChatJob,
        queue: JobQueue,
        *,
        limit: int,
        proof: AuthProof | None,
        near_threshold: int | None,
        max_queued: int,
    ) -> Admitted:
        """`admit`, then at once enqueue the local `job` unpaid (see `JobQueue.enqueue`)
        unless the queue is at `max_queued` or, with a `near_threshold`, its backlog is
        within one waiter of it. Raises `AuthEntryChanged` as `admit` does."""
        check_keys, check_args = self._check(job.account_id, limit, proof)
        job_keys, job_args = queue.enqueue_parts(job, unpaid=True)
        result: Any = await self._admit_and_enqueue(
            keys=[*check_keys, *job_keys],
            args=[
                *check_args,
                "" if near_threshold is None else near_threshold,
                max_queued,
                *job_args,
            ],
        )
        decision = _decision(int(result[0]), int(result[1]), int(result[2]), limit)
        return Admitted(decision, result[3].decode(), int(result[4]))

    def _check(
        self, account_id: int, limit: int, proof: AuthProof | None
    ) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the scripts' `admit` step (see scripts._ADMIT)."""
        window = keys.rate_window(account_id)
        return [window, proof.key if proof else window], [
            max(0, limit),
            self.window_ms,
            uuid.uuid4().hex,
            proof.payload if proof else b"",
        ]


def _decision(allowed: int, remaining: int, reset_ms: int, limit: int) -> RateDecision:
    if allowed == STALE:
        raise AuthEntryChanged
    return RateDecision(bool(allowed), limit, remaining, reset_ms) if limit > 0 else UNLIMITED
