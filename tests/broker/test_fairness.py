"""Priority between tiers, aging, and fairness between accounts of one tier."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from broker import keys
from broker.queue import JobQueue, QueueSettings
from schema.messages import ChatJob, Settlement
from tests.broker.jobs import BASIC, ENTERPRISE, PRO, T0, chat_job


@pytest.fixture
def queue(redis: Redis) -> JobQueue:
    return JobQueue(redis, QueueSettings(tier_head_start_ms=10_000, fair_share_ms=1_000))


def job(account: int, tier: int, at_ms: int) -> ChatJob:
    return chat_job(account_id=account, tier=tier, enqueued_at_ms=at_ms)


async def claim_order(queue: JobQueue, count: int) -> list[int]:
    order = []
    for i in range(count):
        claimed = await queue.claim("local", slots=1000, now_ms=T0, token=f"t{i}")
        assert claimed is not None
        order.append(claimed.job.account_id)
    return order


async def test_higher_tiers_first(queue: JobQueue) -> None:
    await queue.enqueue(job(1, BASIC, T0))
    await queue.enqueue(job(2, PRO, T0 + 1))
    await queue.enqueue(job(3, ENTERPRISE, T0 + 2))
    assert await claim_order(queue, 3) == [3, 2, 1]


async def test_one_accounts_burst_does_not_starve_its_tier(queue: JobQueue) -> None:
    for i in range(10):
        await queue.enqueue(job(1, PRO, T0 + i))
    await queue.enqueue(job(2, PRO, T0 + 50))
    await queue.enqueue(job(3, PRO, T0 + 60))
    order = await claim_order(queue, 12)
    # Accounts 2 and 3 go right after account 1's first job, not after all ten.
    assert order[:3] == [1, 2, 3]
    assert order[3:] == [1] * 9


async def test_basic_is_served_under_sustained_enterprise_load(queue: JobQueue) -> None:
    """Enterprise keeps arriving, one job a second from many accounts, yet the Basic
    job starts once it has waited the two tiers' head start (20 s)."""
    await queue.enqueue(job(1, BASIC, T0))
    served_basic_at = None
    for second in range(60):
        await queue.enqueue(job(100 + second, ENTERPRISE, T0 + second * 1000))
        claimed = await queue.claim("local", slots=1000, now_ms=T0, token=f"s{second}")
        assert claimed is not None
        if claimed.job.account_id == 1:
            served_basic_at = second
            break
    assert served_basic_at is not None and 19 <= served_basic_at <= 21


async def test_an_account_served_at_once_keeps_its_tiers_head_start(queue: JobQueue) -> None:
    """Fairness counts waiting jobs only: an Enterprise account whose jobs were all
    claimed at once (two a second for two minutes) is not pushed back behind Basic."""
    for i in range(240):
        await queue.enqueue(job(7, ENTERPRISE, T0 + i * 500))
        assert await queue.claim("local", slots=1000, now_ms=T0, token=f"e{i}") is not None
    now = T0 + 120_000
    await queue.enqueue(job(1, BASIC, now - 15_000))  # waited 15 s, less than 20 s
    await queue.enqueue(job(7, ENTERPRISE, now))
    assert await claim_order(queue, 2) == [7, 1]


async def test_waiting_count_follows_claims_and_cancels(queue: JobQueue) -> None:
    first, second, third = (job(5, PRO, T0 + i) for i in range(3))
    for item in (first, second, third):
        await queue.enqueue(item)
    assert await queue.redis.get(keys.waiting("local", 5)) == b"3"
    await queue.claim("local", slots=1000, now_ms=T0, token="c1")
    settlement = Settlement.for_job(second, status="cancelled", charged=False, finished_at_ms=T0)
    assert await queue.cancel(second, settlement) == "dequeued"
    assert await queue.redis.get(keys.waiting("local", 5)) == b"1"
    # A new job of the account is spaced behind the one still waiting, and after it.
    late = job(5, PRO, T0 + 3)
    await queue.enqueue(late)
    assert await queue.redis.zscore(keys.queue("local"), late.id) > await queue.redis.zscore(
        keys.queue("local"), third.id
    )
