"""The cloud budget and the routed enqueue on a real Redis, persisted in PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from broker import keys
from broker.budget import CloudBudget, LoadPersisted, budget_day
from broker.queue import JobQueue, QueueFull
from schema import cloud_budget
from schema.db import make_engine, make_session_factory
from schema.messages import ChatJob
from schema.migrate import upgrade
from tests.broker.jobs import chat_job
from tests.services import PostgresServer, RedisServer

DAY = "2026-11-24"


def in_memory_loader(persisted: dict[str, int]) -> LoadPersisted:
    async def load(day: str) -> int:
        return persisted.get(day, 0)

    return load


def job() -> ChatJob:
    return chat_job(account_id=1, credits_reserved=2, enqueued_at_ms=int(time.time() * 1000))


def cloud_of(local: ChatJob) -> ChatJob:
    return local.model_copy(
        update={"pool": "cloud", "model_served": "qwen3.5:cloud", "budget_day": DAY}
    )


async def test_cap_is_never_passed_under_concurrency(redis: Redis) -> None:
    budget = CloudBudget(redis, in_memory_loader({}))
    counts = await asyncio.gather(*(budget.take(DAY, 500) for _ in range(600)))
    taken = [c for c in counts if c is not None]
    assert len(taken) == 500 and sorted(taken) == list(range(1, 501))
    assert await budget.used(DAY) == 500
    await budget.give_back(DAY)
    assert await budget.take(DAY, 500) == 500
    assert await budget.take(DAY, 500) is None


async def test_600_overflowing_requests_against_a_cap_of_500(redis: Redis) -> None:
    queue = JobQueue(redis)
    budget = CloudBudget(redis, in_memory_loader({}))
    await budget.restore(DAY)
    for _ in range(5):  # a backed-up local pool
        await queue.enqueue(job())
    locals_ = [job() for _ in range(600)]
    placed = await asyncio.gather(
        *(
            queue.enqueue_routed(
                local, cloud_of(local), backlog_threshold=3, budget_cap=500, failover_allowed=True
            )
            for local in locals_
        )
    )
    pools = Counter(p[0].pool for p in placed if p is not None)
    assert pools == {"cloud": 500, "local": 100}
    assert await queue.backlog("cloud") == 500
    assert await budget.used(DAY) == 500


async def test_the_waiter_past_the_threshold_overflows(redis: Redis) -> None:
    queue = JobQueue(redis)
    await CloudBudget(redis, in_memory_loader({})).restore(DAY)
    served = []
    for _ in range(6):
        local = job()
        placed = await queue.enqueue_routed(
            local, cloud_of(local), backlog_threshold=3, budget_cap=500, failover_allowed=True
        )
        assert placed is not None
        served.append(placed[0].pool)
    # Three waiters stay local; the fourth and later go to the cloud.
    assert served == ["local", "local", "local", "cloud", "cloud", "cloud"]
    local = job()
    refused = await queue.enqueue_routed(
        local, cloud_of(local), backlog_threshold=3, budget_cap=500, failover_allowed=False
    )
    assert refused is not None and refused[0].pool == "local"


async def test_missing_counter_asks_for_a_restore(redis: Redis) -> None:
    local = job()
    queue = JobQueue(redis)
    for _ in range(4):
        await queue.enqueue(job())
    assert (
        await queue.enqueue_routed(
            local, cloud_of(local), backlog_threshold=3, budget_cap=500, failover_allowed=True
        )
        is None
    )
    assert await queue.backlog("local") == 4  # nothing was enqueued


async def test_redis_restart_keeps_the_days_count(
    module_redis: RedisServer, postgres_server: PostgresServer
) -> None:
    upgrade(postgres_server.url)
    engine = make_engine(postgres_server.url)
    sessions = make_session_factory(engine)
    day = f"2099-{uuid.uuid4().int % 12 + 1:02d}-{uuid.uuid4().int % 28 + 1:02d}"

    async def load(wanted: str) -> int:
        def read() -> int:
            with sessions() as session:
                return cloud_budget.persisted_used(session, wanted)

        return await asyncio.to_thread(read)

    def persist(count: int) -> None:
        with sessions() as session, session.begin():
            cloud_budget.persist_used(session, day=day, used=count)

    client = Redis.from_url(module_redis.url)
    try:
        budget = CloudBudget(client, load)
        for _ in range(7):
            count = await budget.take(day, 10)
            assert count is not None
            persist(count)
        await client.aclose()
        module_redis.restart()  # not persistent: Redis comes back empty
        client = Redis.from_url(module_redis.url)
        assert await client.dbsize() == 0
        budget = CloudBudget(client, load)
        assert await budget.take(day, 10) == 8
        assert await budget.take(day, 10) == 9
        assert await budget.take(day, 10) == 10
        assert await budget.take(day, 10) is None
    finally:
        await client.aclose()
        engine.dispose()


def test_alerts_fire_once_at_80_and_100_percent(postgres_server: PostgresServer) -> None:
    upgrade(postgres_server.url)
    engine = make_engine(postgres_server.url)
    day = f"2098-01-{uuid.uuid4().int % 28 + 1:02d}-{uuid.uuid4().hex[:4]}"[:10]
    kinds = [cloud_budget.alert_for(used, 500) for used in range(1, 501)]
    assert [(i + 1, k) for i, k in enumerate(kinds) if k] == [
        (400, "cloud_budget_80"),
        (500, "cloud_budget_100"),
    ]
    with make_session_factory(engine)() as session, session.begin():
        assert cloud_budget.record_alert(session, kind="cloud_budget_80", day=day, message="80%")
        assert not cloud_budget.record_alert(
            session, kind="cloud_budget_80", day=day, message="again"
        )
    engine.dispose()


def test_budget_day_is_in_the_configured_zone() -> None:
    # 21:30 UTC is 00:30 the next day in Kuwait (UTC+3): 23.5 h until the one after.
    late = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)
    kuwait = budget_day(late, "Asia/Kuwait")
    assert kuwait.day == "2026-11-25" and kuwait.seconds_left == int(23.5 * 3600)
    assert budget_day(late, "UTC").day == "2026-11-24"


async def test_jobs_a_free_slot_will_take_are_not_backlog(redis: Redis) -> None:
    queue = JobQueue(redis)
    await CloudBudget(redis, in_memory_loader({})).restore(DAY)
    await queue.announce_slots("local", 4)
    for _ in range(3):  # queued, but four slots are free: nobody waits
        await queue.enqueue(job())
    assert (await queue.queued("local"), await queue.backlog("local")) == (3, 0)
    for _ in range(4):
        local = job()
        placed = await queue.enqueue_routed(
            local, cloud_of(local), backlog_threshold=3, budget_cap=500, failover_allowed=True
        )
        assert placed is not None and placed[0].pool == "local"
    # Seven queued, four of them about to run: three wait, so the next one overflows.
    assert await queue.backlog("local") == 3
    local = job()
    placed = await queue.enqueue_routed(
        local, cloud_of(local), backlog_threshold=3, budget_cap=500, failover_allowed=True
    )
    assert placed is not None and placed[0].pool == "cloud"


async def test_a_full_local_queue_refuses_what_cannot_overflow(redis: Redis) -> None:
    queue = JobQueue(redis)
    budget = CloudBudget(redis, in_memory_loader({}))
    await budget.restore(DAY)
    for _ in range(3):
        await queue.enqueue(job())
    local = job()
    with pytest.raises(QueueFull):
        await queue.enqueue_routed(
            local,
            cloud_of(local),
            backlog_threshold=3,
            budget_cap=0,
            failover_allowed=True,
            max_local_queued=3,
        )
    assert await queue.queued("local") == 3 and await redis.exists(keys.job(local.id)) == 0
    placed = await queue.enqueue_routed(
        local,
        cloud_of(local),
        backlog_threshold=3,
        budget_cap=10,
        failover_allowed=True,
        max_local_queued=3,
    )
    assert placed is not None and placed[0].pool == "cloud"
