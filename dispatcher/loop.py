"""The dispatcher: main -> pool loops (claim -> run_job) + leases, reaper, settler.

Slots are counted in Redis (the pool's inflight set), so several dispatcher
processes together never run more than the configured number of jobs per pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from redis.asyncio import Redis
from sqlalchemy.orm import Session, sessionmaker

from broker.budget import CloudBudget
from broker.queue import Claimed, JobQueue, QueueSettings
from broker.settlements import SettlementStream
from broker.stream import listen_for_cancels
from dispatcher.config import DispatcherSettings
from dispatcher.generation import Upstream, now_ms, run_job
from dispatcher.settler import run_settler, settle_once
from dispatcher.upstream_http import UpstreamHTTP
from dispatcher.upstream_pool import UpstreamPool
from schema import cloud_budget
from schema.messages import Pool

log = logging.getLogger(__name__)

POOLS: tuple[Pool, ...] = ("local", "cloud")
# Enough for a started job to reach its upstream request: task start, translation,
# the connection pool, the request write.
TURNS_FOR_NEW_JOBS = 8
# How long an idle poller waits on its wake-up list before it claims again, and how long
# its empty claim registers it as waiting (jobs enqueued meanwhile are handed to it).
WAIT_S = 0.25
LISTENING_MS = 500


class Dispatcher:
    def __init__(
        self, settings: DispatcherSettings, redis: Redis, sessions: sessionmaker[Session]
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.sessions = sessions
        self.id = uuid.uuid4().hex[:12]
        self.queue = JobQueue(
            redis, QueueSettings(lease_ms=settings.lease_ms, max_attempts=settings.max_attempts)
        )
        self.settlements = SettlementStream(redis, consumer=f"dispatcher-{self.id}")
        self.budget = CloudBudget(redis, self._persisted_budget)
        self.stopping = asyncio.Event()
        # Each running job, and the future a client's cancellation resolves.
        self._running: dict[str, tuple[Claimed, asyncio.Future[None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs: the GC may drop bare tasks
        self._slot_freed = asyncio.Event()
        self._claims = 0

    async def _persisted_budget(self, day: str) -> int:
        def read() -> int:
            with self.sessions() as session:
                return cloud_budget.persisted_used(session, day)

        return await asyncio.to_thread(read)

    def slots(self, pool: Pool) -> int:
        return self.settings.local_slots if pool == "local" else self.settings.cloud_slots

    def upstream(self, pool: Pool) -> Upstream:
        if pool == "cloud" and self.settings.ollama_cloud_url and self.settings.ollama_api_key:
            headers = {"Authorization": f"Bearer {self.settings.ollama_api_key}"}
            return Upstream(self.settings.cloud_base_url, headers, direct_cloud=True)
        base = self.settings.cloud_base_url if pool == "cloud" else self.settings.ollama_url
        return Upstream(base, {})

    async def main(self) -> None:
        async with UpstreamPool() as connections:
            client = UpstreamHTTP(
                connections,
                connect_timeout_s=self.settings.upstream_connect_timeout_s,
                read_timeout_s=self.settings.upstream_read_timeout_s,
            )
            settler = asyncio.create_task(
                run_settler(
                    self.settlements,
                    self.sessions,
                    self.stopping,
                    interval_s=self.settings.settle_interval_ms / 1000,
                )
            )
            helpers = [
                asyncio.create_task(listen_for_cancels(self.redis, self.on_cancel)),
                asyncio.create_task(self._keep_leases()),
                asyncio.create_task(self._reap_expired()),
            ]
            for pool in POOLS:
                await self.queue.announce_slots(pool, self.slots(pool))
            pools = [asyncio.create_task(self._poll(pool, client)) for pool in POOLS]
            await self.stopping.wait()
            await asyncio.gather(*pools, return_exceptions=True)
            await self._stop_listening()
            await self._drain()
            await _cancel_until_done(helpers)
            # The settler finishes its current batch and stops; then what the drained jobs
            # produced is written too, so a clean stop leaves nothing pending.
            await asyncio.gather(settler, return_exceptions=True)
            await self._settle_remaining()

    def stop(self) -> None:
        self.stopping.set()
        self._slot_freed.set()

    def on_cancel(self, job_id: str) -> None:
        running = self._running.get(job_id)
        if running is not None and not running[1].done():
            running[1].set_result(None)

    async def _poll(self, pool: Pool, client: UpstreamHTTP) -> None:
        listening_until = 0  # when this poller's registration as waiting runs out
        claim_first = True
        while not self.stopping.is_set():
            if self._local_count(pool) >= self.slots(pool):
                self._slot_freed.clear()
                await self._slot_freed.wait()
                claim_first = True
                continue
            free = self.slots(pool) - self._local_count(pool)
            try:
                if claim_first:
                    listening_until = now_ms() + LISTENING_MS
                    claimed = await self.queue.claim_many(
                        pool,
                        slots=self.slots(pool),
                        now_ms=now_ms(),
                        tokens=[self._token() for _ in range(free)],
                        listener=self.id,
                        listening_ms=LISTENING_MS,
                    )
                    await self._start_all(claimed, client)
                    if len(claimed) == free:
                        continue
                # The queue is empty: asking again at once would only find it so. An
                # enqueue meanwhile hands its job over, or leaves a wake-up.
                handed = await self.queue.wait_for_work(pool, timeout_s=WAIT_S)
                # Woken (a job was queued) or timed out: claim. Handed a job: wait for
                # the next at once, while still registered as waiting.
                claim_first = handed is None or now_ms() + WAIT_S * 1000 > listening_until
                # One left by a dispatcher that stopped may be near its lease's end;
                # the reaper re-queues it rather than have it run twice.
                if handed is not None and handed.lease_deadline_ms - now_ms() > (
                    self.settings.lease_ms // 2
                ):
                    await self._start_all([handed.claimed], client)
            except Exception:
                # Nothing may end this loop but a stop: a dead poller claims nothing again.
                log.exception("claiming from %s failed; retrying", pool)
                claim_first = True
                await asyncio.sleep(0.5)

    async def _start_all(self, claimed: list[Claimed], client: UpstreamHTTP) -> None:
        for job in claimed:
            self._start(job, client)
        # Scheduler turns for the jobs just started, so their upstream requests go out
        # before this loop's next Redis command competes with them (time to first
        # token). Turns, not a wait: nothing here sleeps.
        if claimed:
            for _ in range(TURNS_FOR_NEW_JOBS):
                await asyncio.sleep(0)

    def _token(self) -> str:
        self._claims += 1
        return f"{self.id}:{self._claims}"

    def _local_count(self, pool: Pool) -> int:
        return sum(1 for claimed, _ in self._running.values() if claimed.job.pool == pool)

    def _start(self, claimed: Claimed, client: UpstreamHTTP) -> None:
        cancelled = asyncio.get_running_loop().create_future()
        self._running[claimed.job.id] = (claimed, cancelled)
        task = asyncio.create_task(
            run_job(
                queue=self.queue,
                client=client,
                upstream=self.upstream(claimed.job.pool),
                claimed=claimed,
                cancelled=cancelled,
                budget=self.budget,
            ),
            name=f"job-{claimed.job.id}",
        )
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(claimed.job.id, t))

    def _finished(self, job_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._running.pop(job_id, None)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("job %s crashed", job_id, exc_info=task.exception())

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_ms / 3000)
            claimed = [c for c, _ in self._running.values()]
            with contextlib.suppress(Exception):
                if claimed:
                    await self.queue.extend(claimed, now_ms=now_ms())
                # Said again and again: a Redis that restarted empty must learn it anew.
                for pool in POOLS:
                    await self.queue.announce_slots(pool, self.slots(pool))

    async def _reap_expired(self) -> None:
        while True:
            await asyncio.sleep(1)
            for pool in POOLS:
                try:
                    for job_id in await self.queue.expired(pool, now_ms=now_ms()):
                        outcome = await self.queue.reap(pool, job_id, now_ms=now_ms())
                        log.warning("reaped job %s from a lost dispatcher: %s", job_id, outcome)
                except Exception:
                    log.exception("reaping %s failed", pool)

    async def _stop_listening(self) -> None:
        """No more jobs handed to this dispatcher. One handed over just before is in a
        pool's handoff list for another dispatcher, or re-queued once its lease ends."""
        with contextlib.suppress(Exception):
            for pool in POOLS:
                await self.queue.stop_listening(pool, self.id)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        log.info("draining %d running jobs", len(self._tasks))
        _done, pending = await asyncio.wait(self._tasks, timeout=self.settings.drain_timeout_s)
        for task in pending:
            task.cancel()  # their leases lapse and another dispatcher re-runs or fails them
        await asyncio.gather(*pending, return_exceptions=True)

    async def _settle_remaining(self) -> None:
        with contextlib.suppress(Exception):
            while await settle_once(self.settlements, self.sessions, block_ms=50):
                pass


async def _cancel_until_done(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel, and cancel again, until every task has ended.

    On Python 3.11, redis-py's `asyncio.wait_for` around a socket write swallows a
    cancellation that lands just as the write completes (CPython gh-86296); a helper
    loop that missed its cancel would run on and the shutdown would never finish.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=0.1)
    await asyncio.gather(*tasks, return_exceptions=True)
