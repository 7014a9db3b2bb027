"""Shared by the tests that use the databases directly, without the running system."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

Sessions = sessionmaker[Session]
T = TypeVar("T")


def race(count: int, work: Callable[[int], T]) -> list[T | Exception]:
    """Run `work(i)` in `count` threads released at the same instant."""
    start = threading.Barrier(count)

    def run(i: int) -> T | Exception:
        start.wait()
        try:
            return work(i)
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))
