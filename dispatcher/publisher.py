"""Batches a job's output events into as few Redis messages as the consumer allows.

While one publish is on the wire, new events accumulate; the next publish carries
them all. A fast model thus costs one message per round trip, not one per token,
and a slow one still gets each token out at once. What is still unpublished when the
job ends goes out with its end (`close`), in the same message as the final event.
"""

from __future__ import annotations

import asyncio

from broker.queue import Claimed, JobQueue
from schema.messages import Delta, Started, encode_events


class ClientCancelled(Exception):
    """The client went away (its cancel reached us through the publish)."""


class LeaseLost(Exception):
    """Another dispatcher owns this job now; stop without finishing it."""


class BatchPublisher:
    def __init__(self, queue: JobQueue, claimed: Claimed) -> None:
        self._queue = queue
        self._claimed = claimed
        self._buffer: list[Started | Delta] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._error: Exception | None = None
        self._first_out = asyncio.Event()
        self.sent_output = False
        self._task = asyncio.create_task(self._run(), name=f"publish-{claimed.job.id}")

    def add(self, event: Started | Delta) -> None:
        if self._error is not None:
            raise self._error
        self._buffer.append(event)
        self._wake.set()

    async def close(self) -> list[Started | Delta]:
        """Stop publishing (a publish on the wire completes first) and return the events
        not yet published, which the caller sends with the job's final event: one round
        trip, and one message to the client, less. Raises ClientCancelled / LeaseLost if
        that happened."""
        self._closing = True
        self._wake.set()
        await self._task
        if self._error is not None:
            raise self._error
        unpublished, self._buffer = self._buffer, []
        return unpublished

    async def first_published(self) -> None:
        """Until the first batch has gone out (or the publisher stopped).

        The first tokens are what time to first token measures: waiting here keeps the
        rest of an already-buffered answer from being parsed before they are sent.
        """
        await self._first_out.wait()

    def abort(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._closing:
                    return
                if self._buffer:
                    batch, self._buffer = self._buffer, []
                    published = await self._publish(batch)
                    self._first_out.set()
                    if not published:
                        return
        finally:
            self._first_out.set()

    async def _publish(self, batch: list[Started | Delta]) -> bool:
        result = await self._queue.publish_output(self._claimed, encode_events(list(batch)))
        if result == 1:
            self.sent_output = self.sent_output or any(isinstance(e, Delta) for e in batch)
            return True
        self._error = ClientCancelled() if result == 2 else LeaseLost()
        return False
