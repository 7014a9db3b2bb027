"""Job event channels over Redis pub/sub.

One `EventHub` per api process holds a single pub/sub connection for all the
process's in-flight requests. `subscribe()` returns only after Redis confirmed the
subscription: pub/sub drops messages sent before a subscriber exists, so the job
must not be enqueued earlier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from broker import keys
from schema.messages import Delta, Done, Failed, Started, decode_events

log = logging.getLogger(__name__)

AnyEvent = Started | Delta | Done | Failed


class JobEvents:
    """The events of one job, in order, as they arrive."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._pending: list[AnyEvent] = []

    def _feed(self, data: bytes) -> None:
        self._queue.put_nowait(data)

    async def next(self, wait_s: float | None = None) -> AnyEvent | None:
        """The next event, or None when `wait_s` passes first."""
        if not self._pending:
            try:
                data = await asyncio.wait_for(self._queue.get(), wait_s)
            except TimeoutError:
                return None
            self._pending = decode_events(data)
            self._pending.reverse()
        return self._pending.pop()

    def ready(self) -> list[AnyEvent]:
        """Every event already received, in order, without waiting.

        A relay writes them out together: one socket write per batch, not per token.
        """
        ready = self._pending[::-1]
        self._pending = []
        while not self._queue.empty():
            ready += decode_events(self._queue.get_nowait())
        return ready


class EventHub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._listeners: dict[bytes, JobEvents] = {}
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub()
        # A permanent subscription keeps the reader alive between requests.
        await self._pubsub.subscribe(keys.hub_control(uuid.uuid4().hex))
        self._reader = asyncio.create_task(self._read(), name="event-hub-reader")

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[JobEvents]:
        assert self._pubsub is not None, "EventHub.start() was not called"
        channel = keys.job_events(job_id).encode()
        events = JobEvents()
        confirmed = asyncio.get_running_loop().create_future()
        self._listeners[channel] = events
        self._confirmations[channel] = confirmed
        try:
            await self._pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed, timeout=5)
            yield events
        finally:
            self._listeners.pop(channel, None)
            self._confirmations.pop(channel, None)
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event hub lost its Redis connection; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, object]) -> None:
        channel = message.get("channel")
        if not isinstance(channel, bytes):
            return
        if message["type"] == "subscribe":
            future = self._confirmations.get(channel)
            if future is not None and not future.done():
                future.set_result(None)
        elif message["type"] == "message":
            listener = self._listeners.get(channel)
            data = message.get("data")
            if listener is not None and isinstance(data, bytes):
                listener._feed(data)


async def listen_for_cancels(
    redis: Redis, on_cancel: Callable[[str], Awaitable[None] | None]
) -> None:
    """Dispatcher side: call `on_cancel(job_id)` for every client cancellation."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.CANCELS)
    try:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (ConnectionError, OSError, RedisError):
                # redis-py subscribes again when it reconnects; keep listening.
                log.warning("cancel listener lost its Redis connection; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is None or not isinstance(message.get("data"), bytes):
                continue
            result = on_cancel(message["data"].decode())
            if result is not None:
                await result
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
