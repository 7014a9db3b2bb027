"""The shared priority queue of chat jobs, one per upstream pool.

Order: lowest score first, where score = enqueue time minus a head start per tier.
A higher tier jumps ahead of lower tiers' jobs enqueued up to `tier_head_start_ms`
(per tier step) earlier, so a waiting Basic job is overtaken only for a bounded time:
that is the aging that keeps Basic from being starved. Within a tier, each account's
jobs are spaced by `fair_share_ms` of virtual time (see scripts._FAIR_SCORE), so one
account's burst cannot starve the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from broker import keys, scripts
from broker.stream import frame_events
from schema.messages import (
    ChatJob,
    Failed,
    Pool,
    Settlement,
    encode_events,
)

CancelOutcome = Literal["dequeued", "signalled", "gone"]


class QueueFull(Exception):
    def __init__(self, pool: Pool) -> None:
        super().__init__(f"the {pool} queue is full")
        self.pool = pool


@dataclass(frozen=True)
class Claimed:
    job: ChatJob
    claim_token: str
    attempts: int


@dataclass(frozen=True)
class Handoff:
    """A job claimed at its enqueue for the dispatcher that popped it. Past its lease
    deadline the reaper may re-queue it, so it must not be started then."""

    claimed: Claimed
    lease_deadline_ms: int


@dataclass(frozen=True)
class QueueSettings:
    lease_ms: int = 5_000
    max_attempts: int = 3
    tier_head_start_ms: int = 10_000
    # Virtual time one waiting job costs its account, for fairness within a tier.
    fair_share_ms: int = 1_000
    job_ttl_s: int = 86_400


class JobQueue:
    def __init__(self, redis: Redis, settings: QueueSettings | None = None) -> None:
        self.redis = redis
        self.settings = settings or QueueSettings()
        self._enqueue = redis.register_script(scripts.ENQUEUE)
        self._claim = redis.register_script(scripts.CLAIM)
        self._extend = redis.register_script(scripts.EXTEND)
        self._publish = redis.register_script(scripts.PUBLISH_OUTPUT)
        self._finish = redis.register_script(scripts.FINISH)
        self._cancel = redis.register_script(scripts.CANCEL)
        self._reap = redis.register_script(scripts.REAP)
        self._route = redis.register_script(scripts.ROUTE_AND_ENQUEUE)
        self._expire_waiting = redis.register_script(scripts.EXPIRE_WAITING)
        self._backlog = redis.register_script(scripts.BACKLOG)
        self._release = redis.register_script(scripts.RELEASE)
        self._refuse = redis.register_script(scripts.REFUSE)

    def tier_offset(self, job: ChatJob) -> int:
        return job.tier * self.settings.tier_head_start_ms

    def score(self, job: ChatJob) -> int:
        """The score of an account's first waiting job (later ones start later)."""
        return job.enqueued_at_ms - self.tier_offset(job)

    async def enqueue(self, job: ChatJob, *, unpaid: bool = False) -> None:
        """Queue the job, or hand it to a waiting dispatcher when nothing waits ahead.

        `unpaid`: its credits are being reserved; until `release` its output is held."""
        job_keys, job_args = self.enqueue_parts(job, unpaid=unpaid)
        await self._enqueue(keys=job_keys, args=job_args)

    def enqueue_parts(self, job: ChatJob, *, unpaid: bool) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the enqueue script's step (`scripts._ENQUEUE_JOB`)."""
        job_keys = [
            keys.queue(job.pool),
            keys.job(job.id),
            keys.wake(job.pool),
            keys.last_score(job.pool, job.account_id),
            keys.waiting(job.pool, job.account_id),
            *_handoff_keys(job.pool),
        ]
        job_args: list[Any] = [
            job.id,
            job.model_dump_json(),
            job.enqueued_at_ms,
            self.tier_offset(job),
            self.settings.fair_share_ms,
            self.settings.job_ttl_s,
            "1" if unpaid else "0",
        ]
        return job_keys, job_args

    async def release(self, job: ChatJob) -> bool:
        """The unpaid job's credits are reserved: deliver what it held, and all that
        follows. False when the job is gone."""
        released = await self._release(
            keys=[
                keys.job(job.id),
                keys.held(job.id),
                job.reply_to,
                keys.SETTLEMENTS,
                keys.REFUND_BELL,
            ]
        )
        return bool(released)

    async def refuse(self, job: ChatJob) -> None:
        """The unpaid job's credits could not be reserved: drop it, delivering and
        settling nothing (a dispatcher running it is told to stop)."""
        await self._refuse(
            keys=[keys.queue(job.pool), keys.job(job.id), keys.held(job.id), keys.CANCELS],
            args=[job.id],
        )

    async def enqueue_routed(
        self,
        local: ChatJob,
        cloud: ChatJob,
        *,
        backlog_threshold: int,
        budget_cap: int,
        failover_allowed: bool,
        max_local_queued: int = 1_000_000,
        unpaid: bool = False,
    ) -> tuple[ChatJob, int] | None:
        """Enqueue `cloud` if the local backlog is above the threshold and the budget has
        room (taking a unit), else `local`. Returns the job enqueued and the budget count
        it took (0 for local), or None when the budget counter must be restored first.
        Raises QueueFull when the job would wait locally in a queue at `max_local_queued`."""
        assert local.id == cloud.id and cloud.budget_day is not None
        result: Any = await self._route(
            keys=[
                keys.queue("local"),
                keys.queue("cloud"),
                keys.job(local.id),
                keys.cloud_budget(cloud.budget_day),
                keys.wake("local"),
                keys.wake("cloud"),
                keys.last_score("local", local.account_id),
                keys.last_score("cloud", local.account_id),
                keys.inflight("local"),
                keys.slots("local"),
                keys.waiting("local", local.account_id),
                keys.waiting("cloud", local.account_id),
                keys.inflight("cloud"),
                keys.slots("cloud"),
                *_handoff_keys("local")[2:],
                *_handoff_keys("cloud")[2:],
            ],
            args=[
                local.id,
                local.model_dump_json(),
                cloud.model_dump_json(),
                local.enqueued_at_ms,
                self.tier_offset(local),
                self.settings.fair_share_ms,
                backlog_threshold,
                budget_cap,
                "1" if failover_allowed else "0",
                self.settings.job_ttl_s,
                max_local_queued,
                "1" if unpaid else "0",
            ],
        )
        pool, count = result[0].decode(), int(result[1])
        if pool == "restore":
            return None
        if pool == "full":
            raise QueueFull("local")
        return (
            (cloud, count)
            if pool == "cloud"
            else (local.model_copy(update={"budget_day": None}), 0)
        )

    async def backlog(self, pool: Pool) -> int:
        """Jobs waiting for a slot: queued beyond the pool's free slots."""
        result: Any = await self._backlog(
            keys=[keys.queue(pool), keys.inflight(pool), keys.slots(pool)]
        )
        return int(result)

    async def queued(self, pool: Pool) -> int:
        """Every job in the pool's queue, claimed soon or not."""
        return int(await self.redis.zcard(keys.queue(pool)))

    async def announce_slots(self, pool: Pool, slots: int) -> None:
        """A dispatcher says how many slots the pool has (all must agree), and the lease
        it takes on a job (a job handed over at its enqueue gets that lease)."""
        await self.redis.mset({keys.slots(pool): slots, keys.lease(pool): self.settings.lease_ms})

    async def running(self, pool: Pool) -> int:
        return int(await self.redis.zcard(keys.inflight(pool)))

    async def position(self, job: ChatJob) -> int | None:
        rank: Any = await self.redis.zrank(keys.queue(job.pool), job.id)
        return None if rank is None else int(rank) + 1

    async def claim(self, pool: Pool, *, slots: int, now_ms: int, token: str) -> Claimed | None:
        claimed = await self.claim_many(pool, slots=slots, now_ms=now_ms, tokens=[token])
        return claimed[0] if claimed else None

    async def claim_many(
        self,
        pool: Pool,
        *,
        slots: int,
        now_ms: int,
        tokens: list[str],
        listener: str = "",
        listening_ms: int = 0,
    ) -> list[Claimed]:
        """Up to one job per claim token, in priority order, within the pool's slots.

        A `listener` (a dispatcher's id) whose claim finds the queue empty is registered
        for `listening_ms`: an enqueue meanwhile may hand it the job (`wait_for_work`)."""
        result: Any = await self._claim(
            keys=[keys.queue(pool), keys.inflight(pool), keys.listeners(pool)],
            args=[
                slots,
                now_ms,
                self.settings.lease_ms,
                keys.job_prefix(),
                listener,
                now_ms + listening_ms,
                *tokens,
            ],
        )
        return [
            Claimed(ChatJob.model_validate_json(result[i + 1]), tokens[i // 3], int(result[i + 2]))
            for i in range(0, len(result), 3)
        ]

    async def wait_for_work(self, pool: Pool, timeout_s: float) -> Handoff | None:
        """Until a job is handed over (returned), a wake-up (None: claim) or the timeout."""
        popped: Any = await self.redis.blpop(
            [keys.handoff(pool), keys.wake(pool)], timeout=timeout_s
        )
        if popped is None or popped[0].decode() != keys.handoff(pool):
            return None
        token, deadline, payload = popped[1].split(b" ", 2)
        claimed = Claimed(ChatJob.model_validate_json(payload), token.decode(), attempts=1)
        return Handoff(claimed, lease_deadline_ms=int(deadline))

    async def stop_listening(self, pool: Pool, listener: str) -> None:
        """No more jobs handed to this dispatcher (it stops)."""
        await self.redis.zrem(keys.listeners(pool), listener)

    async def extend(self, claimed: list[Claimed], *, now_ms: int) -> None:
        deadline = now_ms + self.settings.lease_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in claimed:
                await self._extend(
                    keys=[keys.inflight(item.job.pool), keys.job(item.job.id)],
                    args=[item.job.id, item.claim_token, deadline],
                    client=pipe,
                )
            await pipe.execute()

    async def publish_output(self, claimed: Claimed, batch: bytes) -> int:
        """1 published, 0 the lease was lost, 2 the client cancelled."""
        return int(
            await self._publish(
                keys=[keys.job(claimed.job.id), claimed.job.reply_to, keys.held(claimed.job.id)],
                args=[claimed.claim_token, frame_events(claimed.job.id, batch)],
            )
        )

    async def finish(self, claimed: Claimed, batch: bytes, settlement: Settlement) -> bool:
        """True when finished; False when the lease was lost or the job was refused
        (its credits were never reserved: nothing is settled)."""
        job = claimed.job
        done = await self._finish(
            keys=[
                keys.inflight(job.pool),
                keys.job(job.id),
                job.reply_to,
                keys.SETTLEMENTS,
                keys.wake(job.pool),
                keys.queue(job.pool),
                keys.held(job.id),
                keys.REFUND_BELL,
            ],
            args=[
                job.id,
                claimed.claim_token,
                frame_events(job.id, batch),
                settlement.model_dump_json(),
                keys.served_per_second(job.pool),
            ],
        )
        return bool(done)

    async def expire_waiting(self, job: ChatJob, settlement: Settlement) -> bool:
        """End a job that waited too long, if no dispatcher has claimed it yet."""
        ended = await self._expire_waiting(
            keys=[keys.queue(job.pool), keys.job(job.id), keys.SETTLEMENTS, keys.REFUND_BELL],
            args=[job.id, settlement.model_dump_json()],
        )
        return bool(ended)

    async def service_rate(self, pool: Pool) -> float:
        """Jobs finished per second: over the last 10 s, or the last minute if that was
        idle. A short window follows a change of load quickly (an overload just begun)."""
        now_s = int((await self.redis.time())[0])
        names = [f"{keys.served_per_second(pool)}{now_s - i}" for i in range(1, 61)]
        counts = [int(c) if c is not None else 0 for c in await self.redis.mget(names)]
        recent = sum(counts[:10])
        return recent / 10 if recent else sum(counts) / 60

    async def cancel(self, job: ChatJob, settlement: Settlement) -> CancelOutcome:
        outcome = await self._cancel(
            keys=[
                keys.queue(job.pool),
                keys.job(job.id),
                keys.SETTLEMENTS,
                keys.CANCELS,
                keys.REFUND_BELL,
            ],
            args=[job.id, settlement.model_dump_json()],
        )
        return {1: "dequeued", 2: "signalled"}.get(int(outcome), "gone")  # type: ignore[return-value]

    async def expired(self, pool: Pool, *, now_ms: int) -> list[str]:
        ids: Any = await self.redis.zrangebyscore(keys.inflight(pool), "-inf", now_ms)
        return [i.decode() for i in ids]

    async def reap(self, pool: Pool, job_id: str, *, now_ms: int) -> int:
        """Re-queue an expired job, or fail and settle it if output already went out."""
        fields = await self.redis.hgetall(keys.job(job_id))
        if b"payload" not in fields:
            await self.redis.zrem(keys.inflight(pool), job_id)
            return 0
        job = ChatJob.model_validate_json(fields[b"payload"])
        cancelled = fields.get(b"cancelled") == b"1"
        failed = Failed(
            status=502,
            code="dispatcher_lost",
            message="The server handling this request stopped; the request was not charged.",
            after_output=fields.get(b"sent") == b"1",
        )
        settlement = Settlement.for_job(
            job,
            status="cancelled" if cancelled else "error",
            charged=False,
            finished_at_ms=now_ms,
            error_code=None if cancelled else failed.code,
        )
        return int(
            await self._reap(
                keys=[
                    keys.inflight(pool),
                    keys.queue(pool),
                    keys.job(job_id),
                    job.reply_to,
                    keys.SETTLEMENTS,
                    keys.wake(pool),
                    keys.held(job_id),
                    keys.REFUND_BELL,
                ],
                args=[
                    job_id,
                    now_ms,
                    frame_events(job_id, encode_events([failed])),
                    settlement.model_dump_json(),
                    self.settings.max_attempts,
                ],
            )
        )


def _handoff_keys(pool: Pool) -> list[str]:
    """What `_HAND_OFF` reads of a pool: inflight, slots, lease, listeners, handoff."""
    return [
        keys.inflight(pool),
        keys.slots(pool),
        keys.lease(pool),
        keys.listeners(pool),
        keys.handoff(pool),
    ]
