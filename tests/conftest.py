"""Session fixtures: real Redis, real PostgreSQL, and the whole system as processes.

End-to-end tests take `stack`, which is parametrised over PostgreSQL and SQLite,
so every such test runs against both databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from redis.asyncio import Redis

from broker.connection import make_redis
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from tests.databases import Sessions
from tests.services import PostgresServer, RedisServer, start_postgres, start_redis
from tests.stack import Stack


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    """A Redis server of the module's own: its tests may flush, restart or kill it
    without touching the stacks' Redis."""
    server = start_redis(allow_external=False)
    yield server
    server.stop()


@pytest.fixture
async def redis(module_redis: RedisServer) -> AsyncIterator[Redis]:
    """A client of the module's Redis, emptied before the test."""
    client = make_redis(module_redis.url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sessions]:
    """Sessions on the migrated databases: the session's PostgreSQL (shared with the e2e
    stack, so every test makes its own accounts) and a SQLite file of the module's own."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.url
    else:
        name = request.module.__name__.rsplit(".", 1)[-1]
        url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'resayil.db'}"
    yield from _migrated(url)


@pytest.fixture(scope="module")
def postgres_sessions(postgres_server: PostgresServer) -> Iterator[Sessions]:
    """Sessions on the session's PostgreSQL only, for what only PostgreSQL has."""
    yield from _migrated(postgres_server.url)


def _migrated(url: str) -> Iterator[Sessions]:
    upgrade(url)  # idempotent: the e2e stack may have migrated this database already
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    redis = start_redis()
    if request.param == "postgresql":
        database_url = postgres_server.url
    else:
        database_url = f"sqlite:///{workdir / 'resayil.db'}"
    system = Stack(database_url=database_url, redis_url=redis.url, workdir=Path(workdir))
    system.redis_server = redis
    try:
        system.start()
        yield system
    finally:
        system.stop()
        redis.stop()


@pytest.fixture
def client_for(stack: Stack) -> Iterator[Callable[..., openai.OpenAI]]:
    """Official openai clients for the stack, all closed at teardown."""
    made: list[openai.OpenAI] = []

    def make(key: str, **options: Any) -> openai.OpenAI:
        options.setdefault("max_retries", 0)
        made.append(openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key, **options))
        return made[-1]

    yield make
    for client in made:
        client.close()
