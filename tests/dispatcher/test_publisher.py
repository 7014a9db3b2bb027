"""`BatchPublisher` against a real Redis: batches in order, and what is unpublished at
the end goes out with the job's final event, in one message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from broker import keys
from broker.queue import Claimed, JobQueue, QueueSettings
from dispatcher.publisher import BatchPublisher
from schema.messages import (
    Delta,
    Done,
    Settlement,
    Started,
    decode_events,
    encode_events,
)
from tests.broker.jobs import T0, chat_job

CHANNEL = keys.replies("publisher-test")
DONE = Done(finish_reason="stop", prompt_tokens=3, completion_tokens=4)


@pytest.fixture
async def claimed(redis: Redis) -> Claimed:
    queue = JobQueue(redis, QueueSettings())
    await queue.enqueue(chat_job(reply_to=CHANNEL))
    job = await queue.claim("local", slots=10, now_ms=T0, token="t")
    assert job is not None
    return job


class Messages:
    """The reply channel's messages as they arrive, each a list of events."""

    def __init__(self) -> None:
        self.received: list[list[Any]] = []
        self.ended = asyncio.Event()

    async def until_ended(self) -> list[list[Any]]:
        async with asyncio.timeout(5):
            await self.ended.wait()
        return self.received


@pytest.fixture
async def messages(redis: Redis) -> AsyncIterator[Messages]:
    messages = Messages()
    pubsub = redis.pubsub()
    await pubsub.subscribe(CHANNEL)
    # Subscribed once Redis confirms it: the scripts publish over another connection,
    # which Redis may serve first.
    confirmation = await pubsub.get_message(timeout=5)
    assert confirmation is not None and confirmation["type"] == "subscribe"

    async def read() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                _job_id, _, batch = message["data"].partition(b" ")
                messages.received.append(decode_events(batch))
                if isinstance(messages.received[-1][-1], Done):
                    messages.ended.set()

    reader = asyncio.create_task(read())
    yield messages
    reader.cancel()
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def finish(redis: Redis, claimed: Claimed, unpublished: list[Started | Delta]) -> None:
    queue = JobQueue(redis, QueueSettings())
    settlement = Settlement.for_job(claimed.job, status="ok", charged=True, finished_at_ms=T0)
    assert await queue.finish(claimed, encode_events([*unpublished, DONE]), settlement)


def deltas(*texts: str) -> list[Delta]:
    return [Delta(content=text) for text in texts]


async def test_the_tail_goes_out_with_the_final_event(
    redis: Redis, claimed: Claimed, messages: Messages
) -> None:
    publisher = BatchPublisher(JobQueue(redis, QueueSettings()), claimed)
    started = Started(model_served="llama3.2:3b", queue_wait_ms=0)
    publisher.add(started)
    publisher.add(Delta(content="a"))
    await publisher.first_published()
    for delta in deltas("b", "c"):
        publisher.add(delta)
    unpublished = await publisher.close()
    assert unpublished == deltas("b", "c")
    assert publisher.sent_output

    await finish(redis, claimed, unpublished)
    assert await messages.until_ended() == [[started, *deltas("a")], [*deltas("b", "c"), DONE]]


async def test_a_publish_on_the_wire_at_close_completes_first(
    redis: Redis, claimed: Claimed, messages: Messages
) -> None:
    publisher = BatchPublisher(JobQueue(redis, QueueSettings()), claimed)
    publisher.add(Delta(content="a"))
    await publisher.first_published()
    publisher.add(Delta(content="b"))
    await asyncio.sleep(0)  # the publisher takes "b" and starts its publish
    publisher.add(Delta(content="c"))
    unpublished = await publisher.close()
    await finish(redis, claimed, unpublished)

    received = await messages.until_ended()
    assert [event for batch in received for event in batch] == [*deltas("a", "b", "c"), DONE]
    # Whatever was not on the wire went with the end, nothing twice.
    assert received[-1] == [*unpublished, DONE] and deltas("c")[0] in unpublished
