"""`make_redis` on real Redis: a stalled server fails a command in bounded time."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

from redis.exceptions import TimeoutError as RedisTimeoutError

from broker.connection import make_redis
from tests.services import RedisServer


@contextlib.contextmanager
def stalled(server: RedisServer) -> Iterator[None]:
    """The server stops answering (SIGSTOP) until the block ends."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


async def test_a_command_redis_does_not_answer_fails_once_its_timeout_passes(
    module_redis: RedisServer,
) -> None:
    redis = make_redis(module_redis.url, command_timeout_s=0.5)
    try:
        await redis.set("before", "1")
        with stalled(module_redis):
            started = time.monotonic()
            try:
                await redis.get("before")
            except RedisTimeoutError:
                waited_s = time.monotonic() - started
            else:
                raise AssertionError("a stalled Redis answered")
        # Once: not retried (Redis may have run it), which would take four timeouts.
        assert 0.5 <= waited_s < 1.5
        assert await redis.get("before") == b"1"  # a new connection, once it answers
    finally:
        await redis.aclose()


async def test_scripts_and_commands_share_the_timeout(module_redis: RedisServer) -> None:
    redis = make_redis(module_redis.url, command_timeout_s=0.5)
    echo = redis.register_script("return ARGV[1]")
    try:
        assert await echo(args=["warm"]) == b"warm"
        with stalled(module_redis):
            started = time.monotonic()
            try:
                await echo(args=["stalled"])
            except RedisTimeoutError:
                waited_s = time.monotonic() - started
            else:
                raise AssertionError("a stalled Redis answered")
        assert 0.5 <= waited_s < 1.5
        assert await echo(args=["again"]) == b"again"
    finally:
        await redis.aclose()
