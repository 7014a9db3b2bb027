"""Serving one generation: wait for a parallel slot, emit the plan, stop if the client leaves.

Headers go out with the first chunk, as Go's writer commits them on the first write, so a
request waiting for a slot has received nothing yet. A task watches `receive` for
`http.disconnect` (the request body is already read, so nothing else arrives) and cancels
the generation, which releases the slot: closing the connection aborts generation.
"""

import asyncio
import time

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from simulator.catalog import Model
from simulator.errors import RUNNER_STOPPED
from simulator.generation import Plan
from simulator.lines import Clock, LineWriter, dumps, error_line
from simulator.request import ChatCall
from simulator.state import SimState

NDJSON = [(b"content-type", b"application/x-ndjson")]
JSON = b"application/json; charset=utf-8"


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers}


def _body(data: bytes, *, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def send_json(send: Send, status: int, data: bytes) -> None:
    headers = [(b"content-type", JSON), (b"content-length", str(len(data)).encode())]
    await send(_start(status, headers))
    await send(_body(data))


class GenerationResponse(Response):
    def __init__(
        self, *, state: SimState, call: ChatCall, model: Model, plan: Plan, started: int
    ) -> None:
        super().__init__()
        self.state, self.call, self.model, self.plan = state, call, model, plan
        self.started = started
        self.writer = LineWriter(call.model, model.remote())
        directives = call.directives
        delay_ms = directives.delay_ms
        self.delay = (state.config.token_delay_ms if delay_ms is None else delay_ms) / 1000
        self.first_delay = (directives.first_delay_ms or 0) / 1000

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        work = asyncio.create_task(self._generate(send))
        watcher = asyncio.create_task(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((work, watcher), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            work.cancel()
            raise
        finally:
            watcher.cancel()
        if work.done():
            work.result()
            return
        work.cancel()
        self.state.stats.cancelled += 1
        await asyncio.wait((work,))

    async def _generate(self, send: Send) -> None:
        state, model, stats = self.state, self.model, self.state.stats
        state.load(
            model, keep_alive=self.call.keep_alive_seconds, num_ctx=self.call.options.get("num_ctx")
        )
        loaded = time.perf_counter_ns()
        gate = None if model.ref.cloud else state.gate(model)
        if gate is not None:
            stats.waiting += 1
            try:
                await gate.acquire()
            finally:
                stats.waiting -= 1
        stats.enter_active()
        try:
            clock = Clock(start=self.started, loaded=loaded, eval_start=time.perf_counter_ns())
            if self.call.stream:
                await self._stream(send, clock)
            else:
                await self._whole(send, clock)
        finally:
            stats.active -= 1
            if gate is not None:
                gate.release()

    async def _stream(self, send: Send, clock: Clock) -> None:
        plan, writer, delay = self.plan, self.writer, self.delay
        split = self.call.directives.split
        if self.first_delay:
            await asyncio.sleep(self.first_delay)
        started = False
        for chunk in plan.chunks:
            if delay:
                await asyncio.sleep(delay)
            if not started:
                await send(_start(200, NDJSON))
                started = True
            line = writer.chunk(chunk)
            if split:
                await send(_body(line[: len(line) // 2], more=True))
                line = line[len(line) // 2 :]
            await send(_body(line, more=True))
        if not started:
            await send(_start(200, NDJSON))
        if plan.failure == "midstream":
            final = error_line(RUNNER_STOPPED)
        elif plan.failure == "truncate":
            final = b""
        else:
            final = writer.done(plan, clock)
        self._tally()
        await send(_body(final))

    async def _whole(self, send: Send, clock: Clock) -> None:
        plan = self.plan
        wait = self.first_delay + self.delay * len(plan.chunks)
        if wait:
            await asyncio.sleep(wait)
        self._tally()
        if plan.failure == "midstream":
            await send_json(send, 500, dumps({"error": RUNNER_STOPPED}).encode())
            return
        body = self.writer.whole(plan, clock)
        if plan.failure == "truncate":
            body = body[: len(body) // 2]
        await send_json(send, 200, body)

    def _tally(self) -> None:
        if self.plan.failure:
            self.state.stats.errors += 1
        else:
            self.state.stats.completed += 1
