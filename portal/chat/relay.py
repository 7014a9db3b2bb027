"""Relays a queued job's events to the client: SSE chunks, or one JSON body.

Errors known before the first byte go out as non-200 JSON in OpenAI's shape. A
streaming request's response is running from its enqueue on, its status line held
back (`HeldEventSourceResponse`); it waits up to `first_byte_wait_s` for its first
event before it commits to a 200; after that it sends `: queued` heartbeats while it
waits, and errors become `data: {"error": ...}` lines.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from broker.budget import CloudBudget
from broker.queue import JobQueue
from broker.stream import EventHub, JobEvents
from portal.background import BackgroundTasks
from portal.chat.chunks import (
    SSE_DONE,
    ChunkWriter,
    CompletionBuilder,
    error_payload,
    new_completion_id,
    sse_frame,
)
from portal.chat.held_stream import HeldEventSourceResponse
from portal.config import PortalSettings
from portal.exceptions import GatewayError, ServiceUnavailable
from schema.messages import ChatJob, Delta, Done, Failed, Settlement, Started

SettleNow = Callable[[Settlement], Awaitable[None]]
Enqueue = Callable[[], Awaitable[ChatJob]]
DISCONNECT_POLL_S = 0.25


class NothingReserved(Exception):
    """An enqueue that ended before the job's credits were reserved: the request ends
    with `error` (an error answer, or a signal for its caller) and has nothing to settle."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def queue_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The request queue is unavailable; please retry shortly.",
        code="queue_unavailable",
        headers={"retry-after": "5"},
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _headers(job: ChatJob) -> dict[str, str]:
    return {
        "x-request-id": job.id,
        "x-resayil-served-by": job.pool,
        "x-resayil-model": job.model_served,
    }


def unserved(job: ChatJob, *, code: str, reservation_unconfirmed: bool = False) -> Settlement:
    """The settlement of a job that ends without being served: nothing charged."""
    return Settlement.for_job(
        job,
        status="cancelled" if code == "client_cancelled" else "error",
        charged=False,
        finished_at_ms=_now_ms(),
        error_code=code,
        queue_wait_ms=_now_ms() - job.enqueued_at_ms,
        reservation_unconfirmed=reservation_unconfirmed,
    )


def failed_response(job: ChatJob, failed: Failed, waited_ms: int) -> JSONResponse:
    headers = _headers(job) | {"x-resayil-queue-wait-ms": str(waited_ms)}
    if failed.retry_after_s is not None:
        headers["retry-after"] = str(failed.retry_after_s)
    return JSONResponse(error_payload(failed), status_code=failed.status, headers=headers)


class ChatRelay:
    def __init__(
        self,
        hub: EventHub,
        queue: JobQueue,
        settings: PortalSettings,
        settle_now: SettleNow,
        background: BackgroundTasks,
        budget: CloudBudget | None = None,
    ) -> None:
        self.budget = budget
        self.hub = hub
        self.queue = queue
        self.settings = settings
        self.settle_now = settle_now
        self.background = background

    async def respond(
        self, job: ChatJob, request: Request, enqueue: Enqueue | None = None
    ) -> Response:
        """Listen for the job's events, enqueue it, relay its events.

        `enqueue` may place a variant of the job (a cloud failover); the job it returns
        is the one relayed. By default the job is enqueued as it is.
        """
        stack = contextlib.AsyncExitStack()
        try:
            events = stack.enter_context(self.hub.listen(job.id))
            job = await enqueue() if enqueue else await self._enqueue(job)
        except NothingReserved as refused:  # nothing reserved: nothing to settle
            await stack.aclose()
            raise refused.error from refused.__cause__
        except GatewayError as error:  # refused at the enqueue itself (a full queue)
            await stack.aclose()
            await self.settle_now(unserved(job, code=error.code))
            raise
        except Exception as error:
            await stack.aclose()
            await self.settle_now(unserved(job, code="queue_unavailable"))
            raise queue_unavailable() from error
        if job.request.stream:
            return await self._stream(job, events, stack)
        async with stack:
            return await self._complete(job, events, request)

    async def _enqueue(self, job: ChatJob) -> ChatJob:
        await self.queue.enqueue(job)
        return job

    async def _stream(
        self, job: ChatJob, events: JobEvents, stack: contextlib.AsyncExitStack
    ) -> Response:
        return HeldEventSourceResponse(
            lambda response: self._sse(job, events, stack, response),
            headers=_headers(job) | {"cache-control": "no-cache"},
        )

    async def _sse(
        self,
        job: ChatJob,
        events: JobEvents,
        stack: contextlib.AsyncExitStack,
        response: HeldEventSourceResponse,
    ) -> AsyncIterator[bytes]:
        """The job's SSE frames; a failure before the first one refuses `response`."""
        writer = ChunkWriter(
            new_completion_id(), int(time.time()), job.model_served, job.request.include_usage
        )
        finished = False
        try:
            event = await events.next(wait_s=self.settings.first_byte_wait_s)
            if isinstance(event, Failed):
                finished = True
                response.refuse(failed_response(job, event, _now_ms() - job.enqueued_at_ms))
                return
            while True:
                if event is None:
                    expired = await self._expire_if_waited_too_long(job)
                    if expired is not None:
                        finished = True
                        yield sse_frame(error_payload(expired)).encode()
                        return
                    yield await self._heartbeat(job)
                else:
                    # Everything already received goes out in one write: a fast model's
                    # batch costs one send, not one per token.
                    frames, finished = self._frames(writer, [event, *events.ready()])
                    yield frames
                    if finished:
                        return
                event = await events.next(wait_s=self.settings.heartbeat_interval_s)
        finally:
            self.background.spawn(self._end_stream(job, stack, cancel=not finished))

    @classmethod
    def _frames(
        cls, writer: ChunkWriter, batch: list[Started | Delta | Done | Failed]
    ) -> tuple[bytes, bool]:
        """The SSE text of events received together, and whether the stream ends there."""
        parts: list[str] = []
        for event in batch:
            if isinstance(event, Started):
                parts.append(sse_frame(writer.role_chunk()))
            elif isinstance(event, Delta):
                parts.extend(sse_frame(chunk) for chunk in writer.delta_chunks(event))
            else:
                parts.append(cls._closing_frames(writer, event))
                return "".join(parts).encode(), True
        return "".join(parts).encode(), False

    @staticmethod
    def _closing_frames(writer: ChunkWriter, event: Done | Failed) -> str:
        if isinstance(event, Failed):
            return sse_frame(error_payload(event))
        frames = sse_frame(writer.finish_chunk(event))
        if writer.include_usage:
            frames += sse_frame(writer.usage_chunk(event))
        return frames + SSE_DONE

    async def _complete(self, job: ChatJob, events: JobEvents, request: Request) -> Response:
        builder = CompletionBuilder(new_completion_id(), int(time.time()), job.model_served)
        waited_ms = 0
        check_at = time.monotonic() + DISCONNECT_POLL_S
        while True:
            event = await events.next(wait_s=DISCONNECT_POLL_S)
            # Checked on a clock, not only when idle: a steady token stream must not
            # hide a client that left (the upstream would generate to the end).
            if event is None or time.monotonic() >= check_at:
                check_at = time.monotonic() + DISCONNECT_POLL_S
                if await request.is_disconnected():
                    await self._cancel(job)
                    return Response(status_code=499)
            if event is None:
                expired = None if waited_ms else await self._expire_if_waited_too_long(job)
                if expired is not None:
                    return failed_response(job, expired, _now_ms() - job.enqueued_at_ms)
                continue
            if isinstance(event, Started):
                waited_ms = event.queue_wait_ms
            elif isinstance(event, Delta):
                builder.add(event)
            elif isinstance(event, Done):
                headers = _headers(job) | {"x-resayil-queue-wait-ms": str(waited_ms)}
                return JSONResponse(builder.build(event), headers=headers)
            else:
                return failed_response(job, event, waited_ms or _now_ms() - job.enqueued_at_ms)

    async def _heartbeat(self, job: ChatJob) -> bytes:
        """An SSE comment for a request still waiting: its place in the queue."""
        position = await self.queue.position(job)
        return b": queued\n\n" if position is None else f": queued position={position}\n\n".encode()

    async def _expire_if_waited_too_long(self, job: ChatJob) -> Failed | None:
        """End a job still queued after `max_queue_wait_s`, refunded; None if it started."""
        waited_ms = _now_ms() - job.enqueued_at_ms
        if waited_ms < self.settings.max_queue_wait_s * 1000:
            return None
        settlement = unserved(job, code="queue_timeout")
        if not await self.queue.expire_waiting(job, settlement):
            return None  # a dispatcher took it meanwhile: its events are on their way
        if job.budget_day and self.budget is not None:
            await self.budget.give_back(job.budget_day)
        return Failed(
            status=503,
            code="queue_timeout",
            message=f"The request waited {waited_ms // 1000} s in the queue without a free "
            "model slot and was not charged. Please retry later.",
            retry_after_s=30,
        )

    async def _end_stream(
        self, job: ChatJob, stack: contextlib.AsyncExitStack, *, cancel: bool
    ) -> None:
        if cancel:
            await self._cancel(job)
        await stack.aclose()

    async def _cancel(self, job: ChatJob) -> None:
        """The client went away: dequeue the job, or tell its dispatcher to stop it."""
        outcome = await self.queue.cancel(job, unserved(job, code="client_cancelled"))
        if outcome == "dequeued" and job.budget_day and self.budget is not None:
            await self.budget.give_back(job.budget_day)
