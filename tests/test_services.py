"""The throwaway servers of tests/services.py are real, working servers."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import create_engine, text

from tests import services

owns_redis = pytest.mark.skipif(
    bool(os.environ.get("TEST_REDIS_URL")), reason="TEST_REDIS_URL names an external Redis"
)
owns_postgres = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="TEST_DATABASE_URL names an external DB"
)


@pytest.fixture
def persistent_redis() -> Iterator[services.RedisServer]:
    with services.start_redis(persistent=True, allow_external=False) as server:
        yield server


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def read_key(url: str, key: str) -> bytes | None:
    with redis.Redis.from_url(url) as client:
        value = client.get(key)
        assert value is None or isinstance(value, bytes)
        return value


def write_key(url: str, key: str, value: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.set(key, value)


def test_free_port_is_bindable() -> None:
    port = services.free_port()
    assert 1024 <= port <= 65535


def test_redis_server_answers_and_stops() -> None:
    with services.start_redis() as server:
        with redis.Redis.from_url(server.url) as client:
            assert client.ping() is True
        write_key(server.url, "greeting", "marhaba")
        assert read_key(server.url, "greeting") == b"marhaba"
    if not server.external:
        assert server.directory is None
        assert not accepts_connections(server.port)


@owns_redis
def test_redis_restart_without_persistence_comes_back_empty() -> None:
    with services.start_redis(allow_external=False) as server:
        port = server.port
        write_key(server.url, "budget:cloud", "7")
        server.restart()
        assert server.port == port
        assert read_key(server.url, "budget:cloud") is None


@owns_redis
def test_persistent_redis_keeps_data_across_restart_and_kill(
    persistent_redis: services.RedisServer,
) -> None:
    write_key(persistent_redis.url, "budget:cloud", "42")
    persistent_redis.restart()
    assert read_key(persistent_redis.url, "budget:cloud") == b"42"

    write_key(persistent_redis.url, "budget:cloud", "43")
    persistent_redis.kill()
    assert not persistent_redis.running
    persistent_redis.restart()
    assert read_key(persistent_redis.url, "budget:cloud") == b"43"


def test_postgres_server_answers_and_stops() -> None:
    with services.start_postgres() as server:
        assert server.url.startswith("postgresql+psycopg://")
        engine = create_engine(server.url)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
                if not server.external:
                    assert conn.execute(text("SELECT current_database()")).scalar() == (
                        "resayil_test"
                    )
                    assert conn.execute(text("SHOW max_connections")).scalar() == "200"
                    assert conn.execute(text("SHOW fsync")).scalar() == "off"
        finally:
            engine.dispose()
    if not server.external:
        assert server.directory is None


@owns_postgres
def test_postgres_stop_really_stops_the_server() -> None:
    server = services.start_postgres(database="other_db", allow_external=False)
    directory = server.directory
    assert directory is not None
    assert server.url.endswith("/other_db")
    server.stop()
    server.stop()  # idempotent
    assert not directory.exists()
    assert not accepts_connections(server.port)


def test_environment_overrides_start_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_REDIS_URL", "redis://cache.internal:6390/3")
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://app@db.internal:6543/resayil")

    redis_server = services.start_redis()
    assert redis_server.external
    assert (redis_server.url, redis_server.port) == ("redis://cache.internal:6390/3", 6390)
    with pytest.raises(services.ServiceError, match="TEST_REDIS_URL"):
        redis_server.restart()
    redis_server.stop()  # leaves an external server alone

    postgres = services.start_postgres()
    assert postgres.url == "postgresql+psycopg://app@db.internal:6543/resayil"
    assert postgres.dsn == "postgresql://app@db.internal:6543/resayil"
    postgres.stop()
