"""A per-model parallel-slot gate, like the runner's semaphore in `llm/llama_server.go`.

Unlike `asyncio.Semaphore`, the limit is read on every acquire, so `POST /_sim/config`
can change `num_parallel` under running requests; waiters queue without bound.
"""

import asyncio
from collections import deque
from collections.abc import Callable


class Gate:
    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.active = 0

    async def acquire(self) -> None:
        if self.active < self._limit() and not self._waiters:
            self.active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self.release()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.active -= 1
        self.wake()

    def wake(self) -> None:
        """Hand free slots to waiters in arrival order (also after the limit grew)."""
        while self._waiters and self.active < self._limit():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)
