"""The catalog's cache against a database that stops answering (PostgreSQL, whose table
lock makes a reload wait as a stalled server would)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from portal.catalog.service import Catalog
from portal.exceptions import DatabaseUnavailable
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from tests.databases import Sessions

RELOAD_WAIT_S = 0.3


@contextlib.contextmanager
def catalog_locked(sessions: Sessions) -> Iterator[None]:
    """Another transaction holds the prices table: a reload waits until the block ends."""
    with sessions.kw["bind"].connect() as connection:
        connection.execute(text("LOCK TABLE prices IN ACCESS EXCLUSIVE MODE"))
        yield
        connection.rollback()


async def test_a_reload_that_does_not_answer_leaves_the_stale_snapshot_in_use(
    postgres_sessions: Sessions,
) -> None:
    catalog = Catalog(postgres_sessions, ttl_s=0, reload_wait_s=RELOAD_WAIT_S)
    stale = await catalog.snapshot()
    assert stale.prices  # the seed's
    with catalog_locked(postgres_sessions):
        started = time.monotonic()
        assert await catalog.snapshot() is stale
        assert await catalog.snapshot() is stale  # the same reload, still waiting
        waited_s = time.monotonic() - started
    assert 2 * RELOAD_WAIT_S <= waited_s < 2 * RELOAD_WAIT_S + 2
    deadline = time.monotonic() + 10
    while (fresh := await catalog.snapshot()) is stale:  # the database answers again
        assert time.monotonic() < deadline, "the catalog was never reloaded"
    assert fresh.prices == stale.prices


async def test_with_no_snapshot_yet_a_reload_that_does_not_answer_is_a_503(
    postgres_sessions: Sessions,
) -> None:
    catalog = Catalog(postgres_sessions, ttl_s=60, reload_wait_s=RELOAD_WAIT_S)
    with catalog_locked(postgres_sessions):
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as unavailable:
            await catalog.snapshot()
        assert time.monotonic() - started < RELOAD_WAIT_S + 2
    assert unavailable.value.status == 503 and unavailable.value.headers == {"retry-after": "5"}
    deadline = time.monotonic() + 10
    while not catalog.fresh():  # the reload that waited has finished meanwhile
        assert time.monotonic() < deadline, "the reload never finished"
        await asyncio.sleep(0.02)
    assert (await catalog.snapshot()).prices


async def test_requests_that_keep_reloading_each_get_a_snapshot(sessions: Sessions) -> None:
    catalog = Catalog(sessions, ttl_s=0, reload_wait_s=5)

    async def keep_asking() -> int:
        # A caller back at once starts the next reload while others still wake from this one.
        return sum([bool((await catalog.snapshot()).prices) for _ in range(10)])

    assert await asyncio.gather(*(keep_asking() for _ in range(20))) == [10] * 20


async def test_a_reload_the_database_refuses_leaves_the_stale_snapshot_in_use(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'resayil.db'}"
    upgrade(url)
    engine = make_engine(url)
    catalog = Catalog(make_session_factory(engine), ttl_s=0)
    try:
        stale = await catalog.snapshot()
        # The database file goes (a lost volume): its new connections find no tables.
        (tmp_path / "resayil.db").rename(tmp_path / "gone.db")
        engine.dispose()
        assert await catalog.snapshot() is stale
        with pytest.raises(OperationalError):  # a 503 in the api, as any refusal is
            await Catalog(make_session_factory(engine), ttl_s=0).snapshot()
    finally:
        engine.dispose()
