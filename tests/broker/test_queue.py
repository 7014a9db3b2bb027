"""The broker's queue, event hub and settlement stream against a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection

from broker import keys
from broker.budget import CloudBudget
from broker.connection import make_redis
from broker.queue import Claimed, JobQueue, QueueSettings
from broker.settlements import SettlementStream
from broker.stream import EventHub, frame_events
from schema.messages import (
    ChatJob,
    Delta,
    Done,
    Failed,
    Settlement,
    Started,
    decode_events,
    encode_events,
)
from tests.broker.jobs import BASIC, ENTERPRISE, PRO, T0, chat_job
from tests.services import RedisServer


@pytest.fixture
async def other_redis(module_redis: RedisServer) -> AsyncIterator[Redis]:
    """A second connection pool: another process's view of the same Redis."""
    client = make_redis(module_redis.url)
    yield client
    await client.aclose()


def settlement_for(job: ChatJob, status: Any = "cancelled") -> Settlement:
    return Settlement.for_job(job, status=status, charged=False, finished_at_ms=T0)


async def settlements_in_stream(redis: Redis) -> list[Settlement]:
    entries: Any = await redis.xrange(keys.SETTLEMENTS)
    return [Settlement.model_validate_json(fields[b"settlement"]) for _id, fields in entries]


async def claim(queue: JobQueue, *, now_ms: int = T0, slots: int = 10, token: str = "t") -> Claimed:
    claimed = await queue.claim("local", slots=slots, now_ms=now_ms, token=token)
    assert claimed is not None
    return claimed


# -- priority --------------------------------------------------------------------------


async def test_enterprise_enqueued_last_is_claimed_first(redis: Redis) -> None:
    queue = JobQueue(redis)
    basic = chat_job(tier=BASIC, enqueued_at_ms=T0)
    pro = chat_job(tier=PRO, enqueued_at_ms=T0 + 10)
    enterprise = chat_job(tier=ENTERPRISE, enqueued_at_ms=T0 + 20)
    for job in (basic, pro, enterprise):
        await queue.enqueue(job)
    order = [(await claim(queue, token=f"t{i}")).job.id for i in range(3)]
    assert order == [enterprise.id, pro.id, basic.id]
    assert await queue.claim("local", slots=10, now_ms=T0, token="t9") is None


@pytest.mark.parametrize(
    ("enterprise_delay_ms", "first"), [(2_001, "basic"), (1_999, "enterprise")]
)
async def test_aging_bounds_how_long_basic_is_overtaken(
    redis: Redis, enterprise_delay_ms: int, first: str
) -> None:
    # Two tier steps of 1 s head start: Enterprise overtakes a Basic job enqueued
    # less than 2 s earlier, and never one that has waited longer.
    queue = JobQueue(redis, QueueSettings(tier_head_start_ms=1_000))
    jobs = {
        "basic": chat_job(tier=BASIC, enqueued_at_ms=T0),
        "enterprise": chat_job(tier=ENTERPRISE, enqueued_at_ms=T0 + enterprise_delay_ms),
    }
    for job in jobs.values():
        await queue.enqueue(job)
    assert (await claim(queue)).job.id == jobs[first].id


# -- slots -----------------------------------------------------------------------------


async def test_concurrent_claims_of_two_dispatchers_never_exceed_slots(
    redis: Redis, other_redis: Redis
) -> None:
    slots = 3
    dispatchers = [JobQueue(redis), JobQueue(other_redis)]
    for i in range(20):
        await dispatchers[0].enqueue(chat_job(enqueued_at_ms=T0 + i))
    running: list[Claimed] = []
    for round_ in range(4):
        results = await asyncio.gather(
            *(
                dispatchers[i % 2].claim(
                    "local", slots=slots, now_ms=T0, token=f"d{i % 2}:{round_}:{i}"
                )
                for i in range(60)
            )
        )
        running += [c for c in results if c is not None]
        assert len(running) == slots
        assert await dispatchers[0].running("local") == slots
        assert len({c.job.id for c in running}) == slots
        # Two jobs end; the next round may take exactly two more.
        for done in running[:2]:
            assert await dispatchers[1].finish(done, b"{}", settlement_for(done.job, "ok"))
        running = running[2:]
    assert await dispatchers[0].backlog("local") == 20 - slots - 2 * 3


async def test_batched_claims_of_two_dispatchers_never_exceed_slots(
    redis: Redis, other_redis: Redis
) -> None:
    slots = 5
    dispatchers = [JobQueue(redis), JobQueue(other_redis)]
    jobs = [chat_job(tier=1 + i % 3, enqueued_at_ms=T0 + i) for i in range(12)]
    for job in jobs:
        await dispatchers[0].enqueue(job)
    batches = await asyncio.gather(
        *(
            dispatchers[i % 2].claim_many(
                "local", slots=slots, now_ms=T0, tokens=[f"d{i}:{n}" for n in range(3)]
            )
            for i in range(30)
        )
    )
    claimed = [c for batch in batches for c in batch]
    assert len(claimed) == slots == await dispatchers[0].running("local")
    # Each job is owned by the token it was handed with, and the best five went first.
    for item in claimed:
        assert (await redis.hget(keys.job(item.job.id), "claim")) == item.claim_token.encode()
    by_priority = sorted(jobs, key=dispatchers[0].score)
    assert {c.job.id for c in claimed} == {job.id for job in by_priority[:slots]}


# -- cancel ----------------------------------------------------------------------------


async def test_cancel_of_a_waiting_job_dequeues_and_settles_once(redis: Redis) -> None:
    queue = JobQueue(redis)
    job = chat_job()
    await queue.enqueue(job)
    settlement = settlement_for(job)
    assert await queue.cancel(job, settlement) == "dequeued"
    assert await settlements_in_stream(redis) == [settlement]
    assert await queue.backlog("local") == 0
    assert not await redis.exists(keys.job(job.id))
    assert await queue.claim("local", slots=10, now_ms=T0, token="t") is None
    # A second cancel (a retried disconnect) settles nothing more.
    assert await queue.cancel(job, settlement) == "gone"
    assert len(await settlements_in_stream(redis)) == 1


async def rung(redis: Redis) -> bool:
    """Whether the refund bell rang, answering it."""
    return await redis.lpop(keys.REFUND_BELL) is not None


async def test_the_refund_bell_rings_for_every_settlement_that_gives_credits_back(
    redis: Redis,
) -> None:
    queue = JobQueue(redis)
    served, failed, cancelled, expired = (chat_job(credits_reserved=2) for _ in range(4))
    for job in (served, failed):
        await queue.enqueue(job)
        finished = Settlement.for_job(
            job, status="ok", charged=job is served, finished_at_ms=T0 + 1
        )
        assert await queue.finish(await claim(queue), b"[]", finished)
        assert await rung(redis) is (job is failed)
    await queue.enqueue(cancelled)
    assert await queue.cancel(cancelled, settlement_for(cancelled)) == "dequeued"
    assert await rung(redis)
    await queue.enqueue(expired)
    assert await queue.expire_waiting(expired, settlement_for(expired, "error"))
    assert await rung(redis)
    # However many refunds, the bell holds one ring: it says "write now", not how many.
    for job in (chat_job(), chat_job()):
        await queue.enqueue(job)
        await queue.cancel(job, settlement_for(job))
    assert await redis.llen(keys.REFUND_BELL) == 1
    assert len(await settlements_in_stream(redis)) == 6
    # A settlement pushed from Python (the tests' settlers) rings as the scripts do.
    await rung(redis)
    pushed = SettlementStream(redis, consumer="test")
    job = chat_job(credits_reserved=2)
    await pushed.push(Settlement.for_job(job, status="ok", charged=True, finished_at_ms=T0))
    assert not await rung(redis)
    await pushed.push(settlement_for(job))
    assert await rung(redis)


async def test_cancel_of_a_claimed_job_signals_its_dispatcher(redis: Redis) -> None:
    queue = JobQueue(redis)
    job = chat_job()
    await queue.enqueue(job)
    claimed = await claim(queue)
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.CANCELS)
    confirmation = await pubsub.get_message(timeout=5)  # subscribed: Redis confirmed it
    assert confirmation is not None and confirmation["type"] == "subscribe"
    try:
        assert await queue.cancel(job, settlement_for(job)) == "signalled"
        message = await _next_message(pubsub)
        assert message == job.id.encode()
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert await settlements_in_stream(redis) == []  # the dispatcher settles it
    assert await queue.publish_output(claimed, encode_events([Delta(content="x")])) == 2


async def _next_message(pubsub: Any, timeout_s: float = 3.0) -> bytes:
    async with asyncio.timeout(timeout_s):
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                data: bytes = message["data"]
                return data


# -- leases ----------------------------------------------------------------------------


async def test_reap_requeues_an_expired_job_that_sent_nothing(redis: Redis) -> None:
    queue = JobQueue(redis, QueueSettings(lease_ms=500))
    job = chat_job(tier=PRO)
    await queue.enqueue(job)
    first = await claim(queue, now_ms=T0, token="dead")
    assert await queue.expired("local", now_ms=T0 + 499) == []
    assert await queue.expired("local", now_ms=T0 + 500) == [job.id]
    assert await queue.reap("local", job.id, now_ms=T0 + 500) == 1
    assert await queue.running("local") == 0
    assert await redis.zscore(keys.queue("local"), job.id) == queue.score(job)
    assert await settlements_in_stream(redis) == []
    again = await claim(queue, now_ms=T0 + 600, token="alive")
    assert (again.job, again.attempts) == (job, first.attempts + 1)


async def test_reap_fails_and_settles_a_job_whose_output_went_out(redis: Redis) -> None:
    queue = JobQueue(redis, QueueSettings(lease_ms=500))
    hub = EventHub(redis)
    await hub.start()
    job = chat_job(reply_to=hub.channel)
    try:
        with hub.listen(job.id) as events:
            await queue.enqueue(job)
            claimed = await claim(queue, now_ms=T0)
            batch = encode_events([Started(model_served="m", queue_wait_ms=0), Delta(content="a")])
            assert await queue.publish_output(claimed, batch) == 1
            assert await queue.reap("local", job.id, now_ms=T0 + 501) == 2
            received = [await events.next(wait_s=3) for _ in range(3)]
    finally:
        await hub.stop()
    assert isinstance(received[0], Started) and isinstance(received[1], Delta)
    failed = received[2]
    assert isinstance(failed, Failed)
    assert (failed.code, failed.after_output) == ("dispatcher_lost", True)
    [settlement] = await settlements_in_stream(redis)
    assert (settlement.request_id, settlement.status) == (job.id, "error")
    assert (settlement.credits_charged, settlement.error_code) == (0, "dispatcher_lost")
    assert await queue.backlog("local") == 0
    assert await queue.running("local") == 0
    # Reaping again (another dispatcher's reaper raced this one) does nothing more.
    assert await queue.reap("local", job.id, now_ms=T0 + 600) == 0
    assert len(await settlements_in_stream(redis)) == 1


async def test_a_stale_claim_can_neither_publish_nor_finish(redis: Redis) -> None:
    queue = JobQueue(redis, QueueSettings(lease_ms=500))
    job = chat_job()
    await queue.enqueue(job)
    stale = await claim(queue, now_ms=T0, token="old")
    assert await queue.reap("local", job.id, now_ms=T0 + 500) == 1
    current = await claim(queue, now_ms=T0 + 600, token="new")
    assert await queue.publish_output(stale, encode_events([Delta(content="x")])) == 0
    assert not await queue.finish(stale, b"{}", settlement_for(job, "ok"))
    assert await settlements_in_stream(redis) == []
    assert await queue.running("local") == 1
    assert await queue.finish(current, b"{}", settlement_for(job, "ok"))
    assert len(await settlements_in_stream(redis)) == 1
    assert await queue.running("local") == 0


async def test_a_finish_wakes_dispatchers_only_for_a_job_waiting_for_its_slot(
    redis: Redis,
) -> None:
    queue = JobQueue(redis)
    first, second = chat_job(), chat_job(enqueued_at_ms=T0 + 1)
    await queue.enqueue(first)
    await queue.enqueue(second)
    running = await claim(queue, slots=1, token="a")
    await redis.delete(keys.wake("local"))
    # A job still waits (the slot limit held it back): the freed slot is news.
    assert await queue.finish(running, b"{}", settlement_for(first, "ok"))
    assert await redis.llen(keys.wake("local")) == 1
    running = await claim(queue, slots=1, token="b")
    assert running.job.id == second.id
    await redis.delete(keys.wake("local"))
    # Nothing waits: no dispatcher is woken to find an empty queue.
    assert await queue.finish(running, b"{}", settlement_for(second, "ok"))
    assert await redis.llen(keys.wake("local")) == 0


async def test_extend_keeps_only_the_current_owners_lease(redis: Redis) -> None:
    queue = JobQueue(redis, QueueSettings(lease_ms=500))
    job = chat_job()
    await queue.enqueue(job)
    stale = await claim(queue, now_ms=T0, token="old")
    await queue.extend([stale], now_ms=T0 + 400)
    assert await queue.expired("local", now_ms=T0 + 800) == []
    assert await queue.reap("local", job.id, now_ms=T0 + 900) == 1
    current = await claim(queue, now_ms=T0 + 900, token="new")
    await queue.extend([stale], now_ms=T0 + 5_000)  # must not prolong the new owner's lease
    assert await queue.expired("local", now_ms=T0 + 1_400) == [job.id]
    await queue.extend([current], now_ms=T0 + 1_000)
    assert await queue.expired("local", now_ms=T0 + 1_400) == []


# -- handoff to a waiting dispatcher ----------------------------------------------------


async def listen(queue: JobQueue, listener: str = "d1", *, listening_ms: int = 60_000) -> None:
    """A dispatcher's claim that finds the queue empty and registers it as waiting."""
    now = int(time.time() * 1000)
    assert (
        await queue.claim_many(
            "local", slots=4, now_ms=now, tokens=["x"], listener=listener, listening_ms=listening_ms
        )
        == []
    )


async def test_an_enqueue_hands_its_job_to_a_waiting_dispatcher(redis: Redis) -> None:
    queue = JobQueue(redis, QueueSettings(lease_ms=5_000))
    await queue.announce_slots("local", 2)
    await listen(queue)
    job = chat_job(reply_to=keys.replies("api-1"))
    before = int(time.time() * 1000)
    await queue.enqueue(job)
    # Claimed at the enqueue: not queued, running, no wake-up for a claim of its own.
    assert (await queue.queued("local"), await queue.running("local")) == (0, 1)
    assert await redis.llen(keys.wake("local")) == 0
    handed = await queue.wait_for_work("local", timeout_s=0.1)
    assert handed is not None
    assert handed.claimed.job == job and handed.claimed.attempts == 1
    assert before + 5_000 <= handed.lease_deadline_ms <= int(time.time() * 1000) + 5_000
    # The dispatcher that popped it owns it: it publishes and finishes as after a claim.
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(job.reply_to)
        assert await queue.publish_output(handed.claimed, encode_events([Delta(content="hi")]))
        assert await queue.finish(handed.claimed, b"{}", settlement_for(job, "ok"))
    assert await queue.running("local") == 0
    assert [s.status for s in await settlements_in_stream(redis)] == ["ok"]


async def test_a_routed_enqueue_hands_over_too(redis: Redis) -> None:
    queue = JobQueue(redis)
    await CloudBudget(redis, no_cloud_used_yet).restore("2026-11-25")
    await queue.announce_slots("local", 2)
    await listen(queue)
    local = chat_job()
    cloud = local.model_copy(update={"pool": "cloud", "budget_day": "2026-11-25"})
    placed = await queue.enqueue_routed(
        local, cloud, backlog_threshold=5, budget_cap=10, failover_allowed=True
    )
    assert placed is not None and placed[0].pool == "local"
    handed = await queue.wait_for_work("local", timeout_s=0.1)
    assert handed is not None and handed.claimed.job.id == local.id


async def no_cloud_used_yet(day: str) -> int:
    return 0


@pytest.mark.parametrize(
    "situation", ["nobody waits", "registration ran out", "stopped", "job ahead", "no slot"]
)
async def test_the_job_is_queued_when_no_dispatcher_can_take_it_now(
    redis: Redis, situation: str
) -> None:
    queue = JobQueue(redis)
    await queue.announce_slots("local", 1)
    if situation != "nobody waits":
        await listen(queue, listening_ms=-1 if situation == "registration ran out" else 60_000)
    if situation == "stopped":
        await queue.stop_listening("local", "d1")
    if situation == "job ahead":
        await redis.zadd(keys.queue("local"), {"ahead": 0})
    if situation == "no slot":
        await redis.zadd(keys.inflight("local"), {"running": T0})
    job = chat_job()
    await queue.enqueue(job)
    assert await redis.zscore(keys.queue("local"), job.id) is not None
    assert await redis.llen(keys.wake("local")) == 1
    assert await queue.wait_for_work("local", timeout_s=0.05) is None  # woken: claim


async def test_a_job_handed_to_a_dispatcher_that_died_is_requeued_by_the_reaper(
    redis: Redis,
) -> None:
    queue = JobQueue(redis, QueueSettings(lease_ms=500))
    await queue.announce_slots("local", 2)
    await listen(queue)
    job = chat_job()
    await queue.enqueue(job)  # handed over; nobody pops it
    handed_deadline = int(time.time() * 1000) + 500
    assert await queue.expired("local", now_ms=handed_deadline + 10) == [job.id]
    assert await queue.reap("local", job.id, now_ms=handed_deadline + 10) == 1
    again = await claim(queue, now_ms=handed_deadline + 20, token="t2")
    assert again.job.id == job.id and again.attempts == 2
    # The stale handover can neither publish nor finish.
    stale = await queue.wait_for_work("local", timeout_s=0.1)
    assert stale is not None and stale.lease_deadline_ms <= handed_deadline + 10
    assert await queue.publish_output(stale.claimed, encode_events([Delta(content="x")])) == 0
    assert not await queue.finish(stale.claimed, b"{}", settlement_for(job, "ok"))


# -- unpaid jobs: output held until the credits are reserved -----------------------------


class Channel:
    """What is published on a job's reply channel, and on the cancels channel."""

    def __init__(self, redis: Redis, job: ChatJob) -> None:
        self.pubsub = redis.pubsub()
        self.job = job

    async def __aenter__(self) -> Channel:
        await self.pubsub.subscribe(self.job.reply_to, keys.CANCELS)
        for _ in range(2):  # the subscribe confirmations
            confirmation = await self.pubsub.get_message(timeout=1)
            assert confirmation is not None and confirmation["type"] == "subscribe"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.aclose()

    async def received(self) -> list[bytes]:
        messages = []
        while (m := await self.pubsub.get_message(timeout=0.05)) is not None:
            messages.append(m["data"])
        return messages


DONE = Done(finish_reason="stop", prompt_tokens=3, completion_tokens=1)


async def running_unpaid(queue: JobQueue, **claim_args: Any) -> tuple[ChatJob, Claimed]:
    """A job enqueued unpaid (its credits being reserved), claimed by a dispatcher."""
    job = chat_job(reply_to=keys.replies("api-1"))
    await queue.enqueue(job, unpaid=True)
    return job, await claim(queue, **claim_args)


def frame(job: ChatJob, *events: Delta | Done | Failed) -> bytes:
    return frame_events(job.id, encode_events(list(events)))


async def test_an_unpaid_jobs_output_waits_for_its_release(redis: Redis) -> None:
    queue = JobQueue(redis)
    job, running = await running_unpaid(queue)
    async with Channel(redis, job) as channel:
        assert await queue.publish_output(running, encode_events([Delta(content="a")])) == 1
        assert await channel.received() == []
        assert await queue.release(job)
        assert await channel.received() == [frame(job, Delta(content="a"))]
        # Paid: what follows goes out as it comes.
        assert await queue.publish_output(running, encode_events([Delta(content="b")])) == 1
        assert await channel.received() == [frame(job, Delta(content="b"))]
        assert await queue.finish(running, encode_events([DONE]), settlement_for(job, "ok"))
        assert await channel.received() == [frame(job, DONE)]
    assert [s.status for s in await settlements_in_stream(redis)] == ["ok"]


async def test_an_unpaid_job_handed_to_a_dispatcher_holds_its_output_too(redis: Redis) -> None:
    queue = JobQueue(redis)
    await queue.announce_slots("local", 2)
    await listen(queue)
    job = chat_job(reply_to=keys.replies("api-1"))
    await queue.enqueue(job, unpaid=True)
    handed = await queue.wait_for_work("local", timeout_s=0.1)
    assert handed is not None
    async with Channel(redis, job) as channel:
        assert await queue.publish_output(handed.claimed, encode_events([Delta(content="a")]))
        assert await channel.received() == []
        assert await queue.release(job)
        assert await channel.received() == [frame(job, Delta(content="a"))]


async def test_a_job_that_ends_unpaid_is_delivered_and_settled_at_its_release(
    redis: Redis,
) -> None:
    queue = JobQueue(redis)
    job, running = await running_unpaid(queue)
    async with Channel(redis, job) as channel:
        await queue.publish_output(running, encode_events([Delta(content="a")]))
        assert await queue.finish(running, encode_events([DONE]), settlement_for(job, "ok"))
        assert await queue.running("local") == 0  # the slot is free at once
        assert await channel.received() == []
        assert await settlements_in_stream(redis) == []
        assert await queue.release(job)
        assert await channel.received() == [
            frame(job, Delta(content="a")),
            frame(job, DONE),
        ]
    assert [s.status for s in await settlements_in_stream(redis)] == ["ok"]
    assert await redis.exists(keys.job(job.id), keys.held(job.id)) == 0


async def test_a_refused_waiting_job_leaves_the_queue_with_nothing_settled(redis: Redis) -> None:
    queue = JobQueue(redis)
    job = chat_job()
    await queue.enqueue(job, unpaid=True)
    await queue.refuse(job)
    assert await queue.queued("local") == 0
    assert await redis.exists(keys.job(job.id), keys.waiting("local", job.account_id)) == 0
    assert await queue.claim("local", slots=10, now_ms=T0, token="t") is None
    assert await settlements_in_stream(redis) == []


@pytest.mark.parametrize("ended", [False, True], ids=["running", "ended unpaid"])
async def test_a_refused_job_that_started_delivers_and_settles_nothing(
    redis: Redis, ended: bool
) -> None:
    queue = JobQueue(redis)
    job, running = await running_unpaid(queue)
    async with Channel(redis, job) as channel:
        assert await queue.publish_output(running, encode_events([Delta(content="a")])) == 1
        if ended:
            assert await queue.finish(running, encode_events([DONE]), settlement_for(job, "ok"))
        await queue.refuse(job)
        if not ended:
            # Its dispatcher is told to stop; whatever it does next goes nowhere.
            assert await channel.received() == [job.id.encode()]
            assert await queue.publish_output(running, encode_events([Delta(content="b")])) == 2
            assert not await queue.finish(running, encode_events([DONE]), settlement_for(job))
        assert await queue.release(job) is False  # nothing left to release
        assert await channel.received() == []
    assert await settlements_in_stream(redis) == []
    assert await queue.running("local") == 0
    assert await redis.exists(keys.job(job.id), keys.held(job.id)) == 0


async def test_a_reaped_unpaid_job_holds_its_failure_until_release(redis: Redis) -> None:
    queue = JobQueue(redis, QueueSettings(lease_ms=500))
    job, running = await running_unpaid(queue, now_ms=T0)
    async with Channel(redis, job) as channel:
        await queue.publish_output(running, encode_events([Delta(content="a")]))
        assert await queue.reap("local", job.id, now_ms=T0 + 600) == 2  # output went out
        assert await channel.received() == []
        assert await settlements_in_stream(redis) == []
        assert await queue.release(job)
        received = await channel.received()
    assert received[0] == frame(job, Delta(content="a"))
    failure = decode_events(received[1].split(b" ", 1)[1])
    assert isinstance(failure[0], Failed) and failure[0].code == "dispatcher_lost"
    assert [s.status for s in await settlements_in_stream(redis)] == ["error"]


# -- event hub -------------------------------------------------------------------------


async def test_events_published_right_after_subscribe_arrive_in_order(
    redis: Redis, other_redis: Redis
) -> None:
    hub = EventHub(redis)
    await hub.start()
    batches: list[list[Started | Delta | Done | Failed]] = [
        [Started(model_served="m", queue_wait_ms=5), Delta(content="a")],
        [Delta(content="b"), Delta(content="c", thinking="t")],
        [Done(finish_reason="stop", prompt_tokens=1, completion_tokens=3)],
    ]
    expected = [event for batch in batches for event in batch]
    try:
        for _ in range(20):
            job_id = uuid.uuid4().hex
            with hub.listen(job_id) as events:
                # No pause: the hub's channel is subscribed before start() returns.
                for batch in batches:
                    framed = frame_events(job_id, encode_events(batch))
                    await other_redis.publish(hub.channel, framed)
                received = [await events.next(wait_s=3) for _ in expected]
            assert received == expected
    finally:
        await hub.stop()


async def test_events_of_other_jobs_are_not_delivered(redis: Redis) -> None:
    hub = EventHub(redis)
    await hub.start()
    try:
        with hub.listen("mine") as mine, hub.listen("theirs") as theirs:
            for job_id, content in (("theirs", "x"), ("mine", "y")):
                batch = encode_events([Delta(content=content)])
                await redis.publish(hub.channel, frame_events(job_id, batch))
            assert await mine.next(wait_s=3) == Delta(content="y")
            assert await theirs.next(wait_s=3) == Delta(content="x")
            assert await mine.next(wait_s=0.2) is None
    finally:
        await hub.stop()


async def test_the_hub_subscribes_again_after_redis_restarts(module_redis: RedisServer) -> None:
    redis = make_redis(module_redis.url)
    hub = EventHub(redis)
    await hub.start()
    try:
        module_redis.restart()
        with hub.listen("after") as events:
            batch = frame_events("after", encode_events([Delta(content="back")]))
            received = None
            for _ in range(50):  # published until the hub is subscribed again
                await redis.publish(hub.channel, batch)
                received = await events.next(wait_s=0.1)
                if received is not None:
                    break
            assert received == Delta(content="back")
    finally:
        await hub.stop()
        await redis.aclose()


class _OtherConnection(Connection):
    """A connection class the scripts' pipe does not make (as a TLS one)."""


async def test_the_hub_reads_through_redis_py_where_the_pipe_is_not_made(
    module_redis: RedisServer,
) -> None:
    pool = BlockingConnectionPool.from_url(module_redis.url, connection_class=_OtherConnection)
    redis = Redis(connection_pool=pool)
    hub = EventHub(redis)
    await hub.start()
    try:
        with hub.listen("tls") as events:
            await redis.publish(
                hub.channel, frame_events("tls", encode_events([Delta(content="y")]))
            )
            assert await events.next(wait_s=3) == Delta(content="y")
        assert await redis.pubsub_numsub(hub.channel) == [(hub.channel.encode(), 1)]
    finally:
        await hub.stop()
        await redis.aclose()
        await pool.aclose()


def test_event_batches_round_trip() -> None:
    events: list[Started | Delta | Done | Failed] = [
        Started(model_served="m", queue_wait_ms=1),
        Failed(status=502, code="c", message="m", after_output=True),
    ]
    assert decode_events(encode_events(events)) == events


# -- settlement stream -----------------------------------------------------------------


async def test_an_unacked_settlement_is_redelivered_to_another_settler(redis: Redis) -> None:
    dead = SettlementStream(redis, "settler-dead", reclaim_after_ms=300)
    alive = SettlementStream(redis, "settler-alive", reclaim_after_ms=300)
    await dead.ensure_group()
    await alive.ensure_group()  # idempotent: BUSYGROUP is not an error
    settlement = settlement_for(chat_job(), "ok")
    await dead.push(settlement)
    [(entry_id, read)] = await dead.read(block_ms=100)
    assert read == settlement
    assert await alive.read(block_ms=50) == []  # still within the dead settler's claim
    await asyncio.sleep(0.35)
    assert await alive.read(block_ms=50) == [(entry_id, settlement)]
    await alive.ack([entry_id])
    assert await alive.pending() == 0
    assert await dead.read(block_ms=50) == []
