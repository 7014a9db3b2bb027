"""Job events over Redis pub/sub, one reply channel per api process.

Each api process's `EventHub` subscribes once, at start, to its own reply channel
(`keys.replies`); every job it enqueues names that channel (`ChatJob.reply_to`), and
dispatchers publish the job's events there, framed with the job id (`frame_events`).
The hub hands each message to the job's listener. So a request costs no SUBSCRIBE or
UNSUBSCRIBE round trip, and "subscribed before enqueued" holds by construction:
`start()` returns only after Redis confirmed the subscription (pub/sub drops
messages sent before a subscriber exists).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from broker import keys
from broker.pipelined import open_pipe
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
                # A timeout scope, not wait_for: no task per wait (one per batch read).
                async with asyncio.timeout(wait_s):
                    data = await self._queue.get()
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


def frame_events(job_id: str, batch: bytes) -> bytes:
    """A reply-channel message: the job id, a space, the encoded event batch."""
    return job_id.encode() + b" " + batch


class EventHub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.channel = keys.replies(uuid.uuid4().hex)
        self._reader: asyncio.Task[None] | None = None
        self._listeners: dict[bytes, JobEvents] = {}
        self._subscribed: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self._subscribed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._listen(), name="event-hub-reader")
        await asyncio.wait_for(asyncio.shield(self._subscribed), timeout=5)

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    @contextlib.contextmanager
    def listen(self, job_id: str) -> Iterator[JobEvents]:
        """The events of `job_id` from now on (enqueue the job after this)."""
        assert self._subscribed is not None and self._subscribed.done(), (
            "EventHub.start() was not called"
        )
        key = job_id.encode()
        events = JobEvents()
        self._listeners[key] = events
        try:
            yield events
        finally:
            self._listeners.pop(key, None)

    async def _listen(self) -> None:
        """Subscribed on a connection of its own whose messages go straight to their
        listeners as they are read (no reader task between them and the relay); after
        the connection is lost (Redis restarted), subscribed anew. Messages published
        meanwhile are lost, as pub/sub's are: the jobs' ends reach their settlements
        through the stream, and a relay that hears nothing expires by its own clock.
        A TLS connection, which the pipe does not make, is read through redis-py."""
        pool = self.redis.connection_pool
        while True:
            try:
                pipe = await open_pipe(pool, on_push=self._message)
            except Exception as error:  # nothing may end the hub but its stop
                log.warning("event hub cannot reach Redis (%s); retrying", error)
                await asyncio.sleep(0.5)
                continue
            if pipe is None:
                await self._read_through_redis_py()
                return
            try:
                confirmed = await pipe.send(("SUBSCRIBE", self.channel))
                if not isinstance(confirmed, list):  # an error reply (an ACL refusing it)
                    raise RedisError(f"SUBSCRIBE {self.channel} refused: {confirmed}")
                self._confirm_subscribed()
                await pipe.lost
                log.warning("event hub lost its Redis connection; subscribing again")
            except Exception:
                log.exception("event hub could not subscribe; retrying")
            finally:
                pipe.close()
            await asyncio.sleep(0.5)

    def _message(self, reply: Any) -> None:
        kind, data = reply[0], reply[-1]
        if kind in (b"message", "message") and isinstance(data, bytes):
            self._deliver(data)

    def _deliver(self, data: bytes) -> None:
        job_id, _, batch = data.partition(b" ")
        listener = self._listeners.get(job_id)
        if listener is not None:
            listener._feed(batch)

    def _confirm_subscribed(self) -> None:
        if self._subscribed is not None and not self._subscribed.done():
            self._subscribed.set_result(None)

    async def _read_through_redis_py(self) -> None:
        pubsub: PubSub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("event hub lost its Redis connection; retrying")
                    await asyncio.sleep(0.5)
                    continue
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._confirm_subscribed()
                elif message["type"] == "message" and isinstance(message.get("data"), bytes):
                    self._deliver(message["data"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


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
