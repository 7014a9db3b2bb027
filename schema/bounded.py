"""Waiting a bounded time for database work that may never answer.

A database that stops answering (a hung failover, packets dropped, a stopped process)
leaves a query waiting with no error. The work is not cancelled when its time is up
(cancelling a query in flight would wait on the same silent server): it runs on, held
here until it ends, and its caller answers without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a request waits for the database's answer to what it cannot go on without (its
# credit reservation, its key's lookup) before it gets a 503.
ANSWER_TIMEOUT_S = 10.0


class NoAnswer(Exception):
    """The work did not answer in time (it goes on)."""


class BoundedWaits:
    def __init__(self) -> None:
        self._unanswered: set[asyncio.Future[Any]] = set()

    async def answer(self, work: Awaitable[T], timeout_s: float) -> T:
        """`work`'s result; `NoAnswer` once `timeout_s` passes, `work` running on."""
        task = asyncio.ensure_future(work)
        # `wait` cancels the task neither when its time is up nor when its caller is.
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if done:
            return task.result()
        self._unanswered.add(task)  # the GC may drop a bare task
        task.add_done_callback(self._answered_late)
        raise NoAnswer

    def _answered_late(self, task: asyncio.Future[Any]) -> None:
        self._unanswered.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("database work answered late, failing: %s", task.exception())
