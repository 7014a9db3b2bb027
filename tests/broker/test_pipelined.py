"""Scripts over the shared pipelined connection (`broker.pipelined`), on real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import uvloop
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from broker.connection import make_redis
from broker.pipelined import ScriptPipeRedis, open_pipe
from tests.services import RedisServer

ECHO = "return ARGV"
SHAPES = """
local n = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
return {n, 'text', {ARGV[2], false}, tostring(n)}
"""
BUSY_FOR_ARGV_MS = """
local function now() local t = redis.call('TIME') return t[1] * 1e6 + t[2] end
local start = now()
while now() - start < tonumber(ARGV[1]) * 1000 do end
return 'slow'
"""
FAILS = "return redis.error_reply('QUEUE_FULL the queue is full')"


async def clients_of(redis: Redis) -> int:
    return len(await redis.client_list())


async def connections_received(redis: Redis) -> int:
    return int((await redis.info("stats"))["total_connections_received"])


async def test_a_script_answers_as_it_does_through_redis_py(
    redis: Redis, module_redis: RedisServer
) -> None:
    assert isinstance(redis, ScriptPipeRedis)
    plain = Redis.from_url(module_redis.url)
    try:
        script = redis.register_script(SHAPES)
        piped = await script(keys=["n"], args=[2, b"\xff\x00raw"])
        through_redis_py = await plain.register_script(SHAPES)(keys=["n"], args=[3, b"x"])
    finally:
        await plain.aclose()
    assert piped == [2, b"text", [b"\xff\x00raw", None], b"2"]
    assert through_redis_py == [5, b"text", [b"x", None], b"5"]


async def test_concurrent_callers_each_get_their_own_reply_over_one_connection(
    redis: Redis,
) -> None:
    echo = redis.register_script(ECHO)
    await echo(args=["warm"])  # the pipe is open
    before = await clients_of(redis)
    replies = await asyncio.gather(*(echo(args=[i, f"caller {i}"]) for i in range(300)))
    assert replies == [[str(i).encode(), f"caller {i}".encode()] for i in range(300)]
    # No connection was taken per caller: the pool's CLIENT LIST one is all that came.
    assert await clients_of(redis) <= before


async def test_a_caller_that_leaves_does_not_shift_the_replies_of_the_others(
    redis: Redis,
) -> None:
    slow = redis.register_script(BUSY_FOR_ARGV_MS)
    echo = redis.register_script(ECHO)
    await echo(args=["warm"])
    connections = await connections_received(redis)
    leaving = asyncio.create_task(slow(args=[200]))
    await asyncio.sleep(0.05)
    staying = asyncio.create_task(echo(args=["mine"]))
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert await staying == [b"mine"]
    assert await echo(args=["after"]) == [b"after"]
    assert await connections_received(redis) == connections  # the pipe was kept


async def test_an_error_reply_is_raised_with_its_message(redis: Redis) -> None:
    with pytest.raises(ResponseError, match="QUEUE_FULL the queue is full"):
        await redis.register_script(FAILS)()
    assert await redis.register_script(ECHO)(args=["still fine"]) == [b"still fine"]


async def test_a_script_redis_forgot_is_loaded_again(redis: Redis) -> None:
    echo = redis.register_script(ECHO)
    assert await echo(args=["one"]) == [b"one"]
    await redis.script_flush()
    assert await echo(args=["two"]) == [b"two"]


async def test_scripts_work_again_after_redis_restarts(module_redis: RedisServer) -> None:
    redis = make_redis(module_redis.url)
    try:
        counter = redis.register_script("return redis.call('INCR', KEYS[1])")
        assert await counter(keys=["restarts"]) == 1
        module_redis.restart()  # not persistent: it comes back empty, without scripts
        assert await counter(keys=["restarts"]) == 1
        assert await counter(keys=["restarts"]) == 2
    finally:
        await redis.aclose()


async def test_a_blocking_pop_waits_on_its_own_connection_kept_for_the_next(
    redis: Redis,
) -> None:
    echo = redis.register_script(ECHO)
    await echo(args=["warm"])
    waiting = asyncio.ensure_future(redis.blpop(["work"], timeout=2))
    await asyncio.sleep(0.05)
    # The scripts' pipe is not held up by the pop that waits.
    assert await echo(args=["meanwhile"]) == [b"meanwhile"]
    assert not waiting.done()
    await redis.rpush("work", b"job 1")
    assert await waiting == (b"work", b"job 1")
    connections = await connections_received(redis)
    await redis.rpush("work", b"job 2")
    assert await redis.blpop(["work"], timeout=1) == (b"work", b"job 2")
    assert await redis.blpop(["work"], timeout=0.05) is None  # nothing: timed out
    assert await connections_received(redis) == connections  # the same connection again
    assert isinstance(redis, ScriptPipeRedis) and len(redis._idle_blocking) == 1  # not the pool's


async def test_a_pop_whose_caller_left_takes_nothing_from_the_next(redis: Redis) -> None:
    await redis.blpop(["work"], timeout=0.01)  # a connection for pops is open
    clients = await clients_of(redis)
    leaving = asyncio.ensure_future(redis.blpop(["work"], timeout=8))
    await asyncio.sleep(0.05)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    for _ in range(100):  # until Redis lets go of the closed connection (and its pop)
        if await clients_of(redis) < clients:
            break
        await asyncio.sleep(0.02)
    assert await clients_of(redis) < clients  # its connection was closed, not kept
    await redis.rpush("work", b"for the next")
    assert await redis.blpop(["work"], timeout=1) == (b"work", b"for the next")


async def test_pops_work_again_after_redis_restarts(module_redis: RedisServer) -> None:
    redis = make_redis(module_redis.url)
    try:
        assert await redis.blpop(["work"], timeout=0.01) is None
        module_redis.restart()
        await redis.rpush("work", b"after")
        assert await redis.blpop(["work"], timeout=1) == (b"work", b"after")
    finally:
        await redis.aclose()


async def test_the_pipe_logs_in_and_selects_the_urls_database(
    redis: Redis, module_redis: RedisServer
) -> None:
    await redis.acl_setuser(
        "piper", enabled=True, passwords=["+s3cret"], keys=["*"], channels=["*"], commands=["+@all"]
    )
    url = module_redis.url.replace("redis://", "redis://piper:s3cret@").replace("/0", "/3")
    piped = make_redis(url)
    database_3 = Redis.from_url(module_redis.url.replace("/0", "/3"))
    try:
        await piped.register_script("return redis.call('SET', KEYS[1], 'in three')")(keys=["where"])
        assert await redis.get("where") is None  # not in database 0
        assert await database_3.get("where") == b"in three"
        await database_3.flushdb()
    finally:
        await piped.aclose()
        await database_3.aclose()
    wrong = make_redis(url.replace("s3cret", "wrong"))
    try:
        with pytest.raises(AuthenticationError):
            await wrong.register_script(ECHO)(args=["x"])
    finally:
        await wrong.aclose()
        await redis.acl_deluser("piper")


async def test_scripts_left_unanswered_fail_and_a_new_pipe_takes_over(
    redis: Redis, module_redis: RedisServer
) -> None:
    """A stalled Redis (here stopped by SIGSTOP; or a connection that died silently)
    fails the waiting scripts after the reply timeout, not never."""
    piped = ScriptPipeRedis(BlockingConnectionPool.from_url(module_redis.url), reply_timeout_s=0.3)
    pid = module_redis.pid
    assert pid is not None
    try:
        echo = piped.register_script(ECHO)
        assert await echo(args=["warm"]) == [b"warm"]
        connections = await connections_received(redis)
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            stalled = await asyncio.gather(
                *(echo(args=[i]) for i in range(3)), return_exceptions=True
            )
            waited_s = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert all(isinstance(result, RedisTimeoutError) for result in stalled), stalled
        assert 0.3 <= waited_s < 5
        assert await echo(args=["again"]) == [b"again"]
        assert await connections_received(redis) == connections + 1  # one new pipe
    finally:
        await piped.aclose()


async def test_a_reply_that_comes_within_the_timeout_keeps_the_pipe(
    redis: Redis, module_redis: RedisServer
) -> None:
    piped = ScriptPipeRedis(BlockingConnectionPool.from_url(module_redis.url), reply_timeout_s=1.0)
    try:
        echo, slow = piped.register_script(ECHO), piped.register_script(BUSY_FOR_ARGV_MS)
        await slow(args=[0])  # the pipe is open and both scripts are loaded
        await asyncio.sleep(1.1)  # the watchdog looked once, at nothing waiting
        connections = await connections_received(redis)
        await echo(args=["arms the watchdog"])  # it looks at the pipe a second later
        await asyncio.sleep(0.7)
        # In flight when the watchdog looks, answered 0.6 s after it was sent: in time.
        assert await slow(args=[600]) == b"slow"
        assert await echo(args=["after"]) == [b"after"]
        assert await connections_received(redis) == connections  # the same pipe
    finally:
        await piped.aclose()


async def test_a_tls_server_is_left_to_redis_py() -> None:
    pool = BlockingConnectionPool.from_url("rediss://127.0.0.1:1/0")
    assert await open_pipe(pool) is None  # returns before connecting anywhere
    await pool.aclose()


def test_the_pipe_runs_on_uvloop(module_redis: RedisServer) -> None:
    """The api and the dispatcher run on uvloop, whose transports are not asyncio's."""

    async def scripts() -> list[object]:
        redis = make_redis(module_redis.url)
        try:
            echo = redis.register_script(ECHO)
            return list(await asyncio.gather(*(echo(args=[i]) for i in range(3))))
        finally:
            await redis.aclose()

    assert uvloop.run(scripts()) == [[b"0"], [b"1"], [b"2"]]
