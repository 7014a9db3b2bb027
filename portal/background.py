"""Work a request starts and does not wait for."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class BackgroundTasks:
    """Tasks held until they end (the GC may drop a bare task), and awaited at shutdown.
    What a task's failure means is its own to handle: one that raises is only dropped."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: not reported again as never retrieved

    async def drain(self) -> None:
        """Until every task started so far has ended."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
