"""The dispatcher's settler against real Redis and both databases: what finishes is
written, in batches no more often than the interval, and nothing is left behind."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from broker import keys
from broker.queue import JobQueue
from broker.settlements import SettlementStream
from dispatcher.settler import run_settler
from tests.broker.jobs import chat_job
from tests.databases import Sessions
from tests.schema.test_ledger import (
    balance,
    ledger_sum,
    new_account,
    reserved,
    settlement,
    usage_rows,
)

INTERVAL_S = 1.0


@pytest.fixture
def stream(redis: Redis) -> SettlementStream:
    return SettlementStream(redis, consumer=f"settler-{uuid.uuid4().hex[:6]}")


async def written_at(sessions: Sessions, request_id: str, *, within_s: float) -> float:
    """When the request's usage row was first seen (polling), or fail after `within_s`."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(usage_rows, sessions, request_id):
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise AssertionError(f"{request_id} was not settled within {within_s} s")


async def test_settlements_are_written_at_most_once_per_interval_refunds_at_once(
    sessions: Sessions, stream: SettlementStream
) -> None:
    account_id = new_account(sessions, 10)
    first, *rest, failed = [reserved(sessions, account_id, 2) for _ in range(5)]
    stopping = asyncio.Event()
    settler = asyncio.create_task(run_settler(stream, sessions, stopping, interval_s=INTERVAL_S))
    try:
        # Before the first write, which starts the interval. (When its row is first seen
        # can be much later on a busy machine: SQLite's reader waits for the writer.)
        first_pushed = time.monotonic()
        await stream.push(settlement(sessions, account_id, first, charged=2, reserved=2))
        await written_at(sessions, first, within_s=10)
        for request_id in rest:
            await stream.push(settlement(sessions, account_id, request_id, charged=2, reserved=2))
        await asyncio.sleep(INTERVAL_S / 4)
        assert all(not usage_rows(sessions, r) for r in rest), "written before the interval"
        rest_at = [await written_at(sessions, r, within_s=10) for r in rest]
        # Failed before output: its refund is not held back for the interval.
        pushed = time.monotonic()
        await stream.push(settlement(sessions, account_id, failed, charged=0, reserved=2))
        failed_at = await written_at(sessions, failed, within_s=10)
    finally:
        stopping.set()
        await asyncio.wait_for(settler, 10)
    assert min(rest_at) - first_pushed >= INTERVAL_S * 0.9
    assert failed_at - pushed < INTERVAL_S * 0.6
    assert await stream.pending() == 0
    # 10 - 5 x 2 reserved + 2 refunded.
    assert balance(sessions, account_id) == 2 == ledger_sum(sessions, account_id)


async def test_a_refund_settled_by_a_script_is_written_at_once(
    sessions: Sessions, stream: SettlementStream, redis: Redis
) -> None:
    """The dispatchers' and the api's scripts settle too (here a queued job's cancel):
    their refunds ring the bell that ends a settler's wait."""
    account_id = new_account(sessions, 10)
    first, held, cancelled = (reserved(sessions, account_id, 2) for _ in range(3))
    queue = JobQueue(redis)
    job = chat_job(account_id=account_id, credits_reserved=2).model_copy(update={"id": cancelled})
    await queue.enqueue(job)
    stopping = asyncio.Event()
    settler = asyncio.create_task(run_settler(stream, sessions, stopping, interval_s=INTERVAL_S))
    try:
        await stream.push(settlement(sessions, account_id, first, charged=2, reserved=2))
        await written_at(sessions, first, within_s=10)  # the interval starts
        await stream.push(settlement(sessions, account_id, held, charged=2, reserved=2))
        await asyncio.sleep(INTERVAL_S / 10)  # read and held for the interval
        pushed = time.monotonic()
        refund = settlement(sessions, account_id, cancelled, charged=0, reserved=2)
        assert await queue.cancel(job, refund) == "dequeued"
        cancelled_at = await written_at(sessions, cancelled, within_s=10)
    finally:
        stopping.set()
        await asyncio.wait_for(settler, 10)
    assert cancelled_at - pushed < INTERVAL_S * 0.6
    assert usage_rows(sessions, held)  # written with it
    assert balance(sessions, account_id) == 6 == ledger_sum(sessions, account_id)


async def test_a_settler_holding_a_batch_is_not_woken_by_each_settlement(
    sessions: Sessions, stream: SettlementStream, redis: Redis
) -> None:
    account_id = new_account(sessions, 8)
    first, *meanwhile = [reserved(sessions, account_id, 2) for _ in range(4)]
    stopping = asyncio.Event()
    settler = asyncio.create_task(run_settler(stream, sessions, stopping, interval_s=INTERVAL_S))
    try:
        await stream.push(settlement(sessions, account_id, first, charged=2, reserved=2))
        await written_at(sessions, first, within_s=10)
        for request_id in meanwhile:
            await stream.push(settlement(sessions, account_id, request_id, charged=2, reserved=2))
        await asyncio.sleep(INTERVAL_S / 4)
        # Read (pending until written): only the first, which started the batch; the
        # settler sleeps out the interval instead of reading each as it comes.
        pending: Any = await redis.xpending(keys.SETTLEMENTS, keys.SETTLERS_GROUP)
        assert pending["pending"] == 1
        assert await redis.xlen(keys.SETTLEMENTS) == len(meanwhile)
        written = [await written_at(sessions, r, within_s=10) for r in meanwhile]
    finally:
        stopping.set()
        await asyncio.wait_for(settler, 10)
    assert max(written) - min(written) < INTERVAL_S / 2  # one batch
    assert balance(sessions, account_id) == 0 == ledger_sum(sessions, account_id)


async def test_a_clean_stop_writes_what_was_held(
    sessions: Sessions, stream: SettlementStream
) -> None:
    account_id = new_account(sessions, 4)
    first, held = reserved(sessions, account_id, 2), reserved(sessions, account_id, 2)
    stopping = asyncio.Event()
    settler = asyncio.create_task(run_settler(stream, sessions, stopping, interval_s=60))
    await stream.push(settlement(sessions, account_id, first, charged=2, reserved=2))
    await written_at(sessions, first, within_s=10)
    await stream.push(settlement(sessions, account_id, held, charged=2, reserved=2))
    await asyncio.sleep(0.3)  # read and held: the next write is a minute away
    assert not usage_rows(sessions, held)
    stopping.set()
    await asyncio.wait_for(settler, 10)
    assert len(usage_rows(sessions, held)) == 1
    assert await stream.pending() == 0
