"""Writes settlements (usage rows and refunds) to the database in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.exceptions import ResponseError
from sqlalchemy.orm import Session, sessionmaker

from broker.settlements import Entry, SettlementStream
from schema import ledger
from schema.messages import Settlement

log = logging.getLogger(__name__)

BATCH = 200  # settlements per write at most (and per stream read)


def write_settlements(sessions: sessionmaker[Session], settlements: list[Settlement]) -> int:
    with sessions() as session, session.begin():
        return ledger.settle(session, settlements)


async def settle_once(
    stream: SettlementStream, sessions: sessionmaker[Session], *, block_ms: int = 1000
) -> int:
    entries = await stream.read(block_ms=block_ms)
    return await _write(stream, sessions, entries)


async def _write(
    stream: SettlementStream, sessions: sessionmaker[Session], entries: list[Entry]
) -> int:
    if not entries:
        return 0
    written = await asyncio.to_thread(write_settlements, sessions, [s for _id, s in entries])
    await stream.ack([entry_id for entry_id, _s in entries])
    return written


def _refunds(entries: list[Entry]) -> bool:
    return any(s.refund for _id, s in entries)


async def run_settler(
    stream: SettlementStream,
    sessions: sessionmaker[Session],
    stopping: asyncio.Event,
    *,
    interval_s: float = 0.0,
) -> None:
    """Write settlements in batches, at most one write per `interval_s`.

    Each write runs in a thread, and every one kept off the event loop's way is latency
    the running jobs keep; so what finishes within the interval waits for one write.
    While it waits, the settler sleeps on the refund bell, not on the stream (one
    wake-up per batch, not per settlement): a refund is written at once, since the client
    may retry on the credits it gives back. What is held but unwritten stays pending in
    the stream (another settler claims it if this one dies).
    """
    await stream.ensure_group()
    held: list[Entry] = []
    due = 0.0  # when the next write may happen
    while not stopping.is_set():
        try:
            wait_s = due - time.monotonic()
            # Holding a batch: only a refund ends the wait early; the settlements that
            # come meanwhile are read when it ends, not one wake-up each. Bounded, so a
            # stop is noticed within a second.
            if (
                held
                and wait_s > 0
                and not await stream.refund_rung(timeout_s=min(1.0, max(0.001, wait_s)))
            ):
                continue
            # With nothing held, wait for the next settlement (up to a second, for a stop).
            held += await stream.read(count=BATCH, block_ms=None if held else 1000)
            if held and (time.monotonic() >= due or _refunds(held) or len(held) >= BATCH):
                batch, held = held, []
                await _write(stream, sessions, batch)
                due = time.monotonic() + interval_s
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
    # A clean stop leaves nothing held back.
    await _write(stream, sessions, held)
