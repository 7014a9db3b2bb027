"""The sliding-window limiter on a real Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from broker.limits import RateLimiter


async def test_admits_exactly_the_limit_under_concurrency(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    decisions = await asyncio.gather(*(limiter.take(1, 10) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(10))
    refused = [d for d in decisions if not d.allowed]
    assert all(d.remaining == 0 and 1 <= d.retry_after_s <= 60 for d in refused)


async def test_no_double_burst_across_a_window_boundary(redis: Redis) -> None:
    # A fixed window would admit `limit` at the end of one window and `limit` again
    # at the start of the next; a sliding window keeps counting the first burst.
    limiter = RateLimiter(redis, window_ms=1_000)
    first = await asyncio.gather(*(limiter.take(2, 5) for _ in range(5)))
    assert all(d.allowed for d in first)
    await asyncio.sleep(0.5)  # past any 500 ms "boundary", still inside the window
    second = await asyncio.gather(*(limiter.take(2, 5) for _ in range(5)))
    assert not any(d.allowed for d in second)
    await asyncio.sleep(0.6)  # the first burst has now slid out
    third = await asyncio.gather(*(limiter.take(2, 5) for _ in range(6)))
    assert sum(d.allowed for d in third) == 5


async def test_accounts_are_independent_and_zero_is_unlimited(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    assert all([(await limiter.take(3, 1)).allowed, (await limiter.take(4, 1)).allowed])
    assert not (await limiter.take(3, 1)).allowed
    unlimited = await asyncio.gather(*(limiter.take(5, 0) for _ in range(100)))
    assert all(d.allowed for d in unlimited) and unlimited[0].headers() == {}


async def test_peek_does_not_consume_and_headers(redis: Redis) -> None:
    limiter = RateLimiter(redis)
    await limiter.take(6, 3)
    peeked = await limiter.peek(6, 3)
    assert peeked.allowed and peeked.remaining == 2
    assert (await limiter.peek(6, 3)).remaining == 2
    headers = (await limiter.take(6, 3)).headers()
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
