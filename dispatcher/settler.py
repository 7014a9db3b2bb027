"""Writes settlements (usage rows and refunds) to the database in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.exceptions import ResponseError
from sqlalchemy.orm import Session, sessionmaker

from broker.settlements import SettlementStream
from schema import ledger
from schema.messages import Settlement

log = logging.getLogger(__name__)


def write_settlements(sessions: sessionmaker[Session], settlements: list[Settlement]) -> int:
    with sessions() as session, session.begin():
        return ledger.settle(session, settlements)


async def settle_once(
    stream: SettlementStream, sessions: sessionmaker[Session], *, block_ms: int = 1000
) -> int:
    entries = await stream.read(block_ms=block_ms)
    if not entries:
        return 0
    written = await asyncio.to_thread(write_settlements, sessions, [s for _id, s in entries])
    await stream.ack([entry_id for entry_id, _s in entries])
    return written


async def run_settler(
    stream: SettlementStream,
    sessions: sessionmaker[Session],
    stopping: asyncio.Event,
    *,
    interval_s: float = 0.0,
) -> None:
    """Write what finished, then wait `interval_s` so the next write takes all that
    finished meanwhile (the write runs in a thread, and every write taken off the
    event loop's way is latency the running jobs keep)."""
    await stream.ensure_group()
    while not stopping.is_set():
        try:
            if await settle_once(stream, sessions) and interval_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), interval_s)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if isinstance(error, ResponseError) and "NOGROUP" in str(error):
                # Redis restarted without its data: the stream and group are made anew.
                with contextlib.suppress(Exception):
                    await stream.ensure_group()
                continue
            # Unacknowledged entries stay pending and are claimed again later.
            log.exception("settling failed; will retry")
            await asyncio.sleep(1)
