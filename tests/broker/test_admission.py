"""Admission on a real Redis: the cached key entry's check, the rate limit and the
pool's load in one script."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from broker import keys
from broker.admission import Admission, Admitted, AuthEntryChanged
from broker.auth_cache import AuthCache
from broker.limits import RateLimiter
from broker.queue import JobQueue
from schema.messages import ChatJob
from tests.broker.jobs import PRO, chat_job


async def queue_jobs(redis: Redis, pool: str, *, queued: int, running: int, slots: int) -> None:
    if queued:
        await redis.zadd(keys.queue(pool), {f"q{i}": i for i in range(queued)})
    if running:
        await redis.zadd(keys.inflight(pool), {f"r{i}": i for i in range(running)})
    await redis.set(keys.slots(pool), slots)


async def test_admits_exactly_the_limit_under_concurrency(redis: Redis) -> None:
    admission = Admission(redis)
    results = await asyncio.gather(
        *(admission.admit(1, 10, "local", backlog=False) for _ in range(50))
    )
    decisions = [decision for decision, _ in results]
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
    assert all(d.remaining == 0 and d.retry_after_s >= 1 for d in decisions if not d.allowed)


async def test_shares_its_window_with_the_limiter(redis: Redis) -> None:
    # /v1/models peeks with the RateLimiter at the window chat requests are counted in.
    admission = Admission(redis)
    await admission.admit(7, 3, "local", backlog=False)
    peeked = await RateLimiter(redis).peek(7, 3)
    assert peeked.allowed and peeked.remaining == 2
    await RateLimiter(redis).take(7, 3)
    decision, _ = await admission.admit(7, 3, "local", backlog=False)
    assert decision.allowed and decision.remaining == 0
    refused, _ = await admission.admit(7, 3, "local", backlog=False)
    assert not refused.allowed


async def test_reads_the_queued_jobs_or_the_backlog_beyond_free_slots(redis: Redis) -> None:
    # 6 queued, 2 running of 4 slots: 2 of the queued are about to start, 4 wait.
    await queue_jobs(redis, "local", queued=6, running=2, slots=4)
    admission = Admission(redis)
    assert (await admission.admit(2, 0, "local", backlog=False))[1] == 6
    assert (await admission.admit(2, 0, "local", backlog=True))[1] == 4
    await queue_jobs(redis, "cloud", queued=1, running=0, slots=8)
    assert (await admission.admit(2, 0, "cloud", backlog=True))[1] == 0
    assert (await admission.admit(2, 0, "cloud", backlog=False))[1] == 1


async def test_unlimited_counts_nothing_and_a_refusal_still_reads_the_load(
    redis: Redis,
) -> None:
    await queue_jobs(redis, "local", queued=3, running=0, slots=1)
    admission = Admission(redis)
    unlimited = [await admission.admit(3, 0, "local", backlog=True) for _ in range(20)]
    assert all(d.allowed and d.headers() == {} for d, _ in unlimited)
    assert await redis.exists(keys.rate_window(3)) == 0
    await admission.admit(4, 1, "local", backlog=True)
    refused, load = await admission.admit(4, 1, "local", backlog=True)
    assert not refused.allowed and load == 2
    assert refused.headers()["x-ratelimit-remaining-requests"] == "0"


async def test_a_proof_that_still_holds_is_admitted_and_counted(redis: Redis) -> None:
    cache = AuthCache(redis)
    await cache.put("d1", 5, '{"account_id": 5}')
    proof = cache.last_read("d1")
    assert proof is not None and proof.payload == b'{"account_id": 5}'
    decision, _ = await Admission(redis).admit(5, 3, "local", backlog=False, proof=proof)
    assert decision.allowed and decision.remaining == 2


@pytest.mark.parametrize("change", ["deleted", "rewritten", "expired"])
async def test_a_proof_whose_entry_changed_counts_nothing(redis: Redis, change: str) -> None:
    cache = AuthCache(redis)
    await cache.put("d2", 6, '{"account_id": 6, "requests_per_minute": 3}')
    proof = cache.last_read("d2")
    assert proof is not None
    if change == "deleted":
        await AuthCache(redis).revoke_account(6)  # another api process, say
    elif change == "rewritten":
        await AuthCache(redis).put("d2", 6, '{"account_id": 6, "requests_per_minute": 0}')
    else:  # its TTL ran out
        await redis.pexpire(proof.key, 1)
        await asyncio.sleep(0.05)
        assert not await redis.exists(proof.key)
    with pytest.raises(AuthEntryChanged):
        await Admission(redis).admit(6, 3, "local", backlog=False, proof=proof)
    assert await redis.exists(keys.rate_window(6)) == 0
    decision, _ = await Admission(redis).admit(6, 3, "local", backlog=False)
    assert decision.remaining == 2  # the refused attempt took no place in the window


async def test_the_cache_remembers_what_it_last_read_and_forgets_what_is_gone(
    redis: Redis,
) -> None:
    cache = AuthCache(redis)
    assert cache.last_read("d3") is None
    await AuthCache(redis).put("d3", 7, '{"account_id": 7}')
    assert cache.last_read("d3") is None  # written by another process, not read here yet
    assert await cache.get("d3") == b'{"account_id": 7}'
    assert cache.last_read("d3") is not None
    await AuthCache(redis).revoke_key("d3")
    assert await cache.get("d3") is None
    assert cache.last_read("d3") is None
    await cache.put("d3", 7, '{"account_id": 7}')
    await cache.revoke_key("d3")
    assert cache.last_read("d3") is None


# -- admitted and enqueued in one step (a local request) -----------------------------


def local_job(account_id: int) -> ChatJob:
    return chat_job(account_id=account_id, tier=PRO, reply_to=keys.replies("api-1"))


async def admit_and_enqueue(
    redis: Redis, job: ChatJob, *, limit: int = 0, near: int | None = None, cap: int = 100
) -> Admitted:
    return await Admission(redis).admit_and_enqueue(
        job, JobQueue(redis), limit=limit, proof=None, near_threshold=near, max_queued=cap
    )


async def test_an_admitted_local_request_is_enqueued_unpaid_in_the_same_step(
    redis: Redis,
) -> None:
    job = local_job(20)
    admitted = await admit_and_enqueue(redis, job, limit=5)
    assert admitted.outcome == "enqueued"
    assert admitted.decision.allowed and admitted.decision.remaining == 4
    assert await redis.zscore(keys.queue("local"), job.id) is not None
    assert await redis.hget(keys.job(job.id), "unpaid") == b"1"


async def test_a_rate_limited_request_is_not_enqueued(redis: Redis) -> None:
    await RateLimiter(redis).take(21, 1)
    job = local_job(21)
    admitted = await admit_and_enqueue(redis, job, limit=1)
    assert not admitted.decision.allowed and admitted.outcome == "refused"
    assert await redis.zcard(keys.queue("local")) == 0
    assert await redis.exists(keys.job(job.id)) == 0


async def test_a_changed_key_entry_counts_and_enqueues_nothing(redis: Redis) -> None:
    cache = AuthCache(redis)
    await cache.put("digest-22", 22, '{"account_id": 22}')
    proof = cache.last_read("digest-22")
    assert proof is not None
    await redis.set(proof.key, b'{"account_id": 22, "plan": "changed"}')
    job = local_job(22)
    with pytest.raises(AuthEntryChanged):
        await Admission(redis).admit_and_enqueue(
            job, JobQueue(redis), limit=5, proof=proof, near_threshold=None, max_queued=100
        )
    assert await redis.zcard(keys.rate_window(22)) == 0
    assert await redis.exists(keys.job(job.id)) == 0


async def test_near_the_failover_threshold_or_at_the_cap_it_is_admitted_not_enqueued(
    redis: Redis,
) -> None:
    # 6 queued, 2 running of 4 slots: a backlog of 4.
    await queue_jobs(redis, "local", queued=6, running=2, slots=4)
    near = await admit_and_enqueue(redis, local_job(23), limit=5, near=5)
    assert (near.outcome, near.load, near.decision.remaining) == ("near", 4, 4)
    # Two waiters short of the threshold: enqueued (it could not overflow anyway).
    assert (await admit_and_enqueue(redis, local_job(23), near=6)).outcome == "enqueued"
    full = await admit_and_enqueue(redis, local_job(23), cap=7)
    assert (full.outcome, full.load) == ("full", 7)
    assert await redis.zcard(keys.queue("local")) == 7
