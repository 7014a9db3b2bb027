"""Lua scripts over one pipelined connection.

A redis-py command takes a connection from the pool and passes through its retry,
timeout and instrumentation layers: about 45 µs of CPU per command here, more than
the round trip itself. The request path is all scripts (admission, release, claim,
publish, finish), so `ScriptPipeRedis` sends EVALSHA down one connection that every
task shares instead. Each command is written as it comes; Redis answers a connection's
commands in order, so replies go back to their callers first in, first out, parsed
by hiredis. Blocking pops (the dispatcher's wait for a handed-over job, the settler's
refund bell) get pipes of their own, kept for the next pop, and the api's event hub
subscribes on one whose messages (`on_push`) go straight to their listeners. Every
other command, and a connection redis-py would make over TLS, goes through redis-py as
before.

A script never blocks in Redis, so a command left without a reply for
`REPLY_TIMEOUT_S` means Redis is stalled or the connection died silently (a peer that
vanished sends no reset): the pipe is then closed, its callers get `TimeoutError`
(the broker is unavailable), and the next command opens a new one.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, cast

import hiredis
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    DataError,
    NoScriptError,
    RedisError,
    ResponseError,
    TimeoutError,
)

PIPELINED = frozenset({"EVALSHA"})
# Sent on a connection of their own while they block (kept for the next one): the
# dispatcher's wait for a handed-over job is on the way to every first token.
BLOCKING_POPS = frozenset({"BLPOP"})
REPLY_TIMEOUT_S = 10.0


class RespPipe(asyncio.Protocol):
    """One Redis connection: commands written as they come, replies matched in order."""

    def __init__(
        self,
        *,
        decode: bool,
        reply_timeout_s: float = REPLY_TIMEOUT_S,
        on_push: Callable[[Any], None] | None = None,
    ) -> None:
        self._reader = (
            hiredis.Reader(replyError=ResponseError, encoding="utf-8")
            if decode
            else hiredis.Reader(replyError=ResponseError)
        )
        # Each command's reply future, with when the command was sent (the loop's clock).
        self._waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self._transport: asyncio.WriteTransport | None = None
        self._reply_timeout_s = reply_timeout_s
        self._watchdog: asyncio.TimerHandle | None = None
        # A subscribed connection's messages, which no command waits for.
        self._on_push = on_push
        # Resolved when the pipe closes, whoever closed it.
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, do not check.
        self._transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                if not self._waiting and self._on_push is not None:
                    self._on_push(reply)
                    continue
                waiter, _sent_at = self._waiting.popleft()
                if not waiter.done():  # its caller may have gone: the reply is dropped
                    waiter.set_result(reply)
        except (hiredis.ProtocolError, IndexError):
            # Garbage, or a reply nobody asked for: nothing after it can be matched.
            self.close(ConnectionError("Redis sent a reply that cannot be matched"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(ConnectionError(f"Connection to Redis lost: {exc or 'closed by the server'}"))

    @property
    def closed(self) -> bool:
        return self.lost.done()

    def close(self, error: RedisError | None = None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.close()
        failure = error or ConnectionError("Connection to Redis closed")
        while self._waiting:
            waiter, _sent_at = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(failure)

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """The reply to `args` (an error reply is returned, not raised)."""
        assert self._transport is not None and not self.closed
        try:
            packed = hiredis.pack_command(args)
        except TypeError as error:
            raise DataError(str(error)) from None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((future, loop.time()))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._reply_timeout_s, self._watch)
        self._transport.write(packed)
        return future

    def _watch(self) -> None:
        """Close the pipe if its oldest command has waited `reply_timeout_s`; else look
        again when it will have. One timer per pipe, not one per command."""
        self._watchdog = None
        if self.closed or not self._waiting:
            return
        loop = asyncio.get_running_loop()
        left_s = self._waiting[0][1] + self._reply_timeout_s - loop.time()
        if left_s > 0:
            self._watchdog = loop.call_later(left_s, self._watch)
            return
        self.close(
            TimeoutError(f"Redis did not answer within {self._reply_timeout_s:g} s; reconnecting")
        )


def _raise_error_reply(reply: Any) -> Any:
    if isinstance(reply, ResponseError):
        message = str(reply)
        if message.startswith("NOSCRIPT"):
            raise NoScriptError(message)
        raise reply
    return reply


async def open_pipe(
    pool: ConnectionPool,
    *,
    reply_timeout_s: float = REPLY_TIMEOUT_S,
    on_push: Callable[[Any], None] | None = None,
) -> RespPipe | None:
    """A pipe to the pool's server, logged in and on its database; None for a kind of
    connection it does not make (TLS), which stays with redis-py. `on_push` gets the
    replies no command waits for (the messages of a subscribed connection)."""
    settings = pool.connection_kwargs
    loop = asyncio.get_running_loop()

    def make() -> RespPipe:
        return RespPipe(
            decode=bool(settings.get("decode_responses")),
            reply_timeout_s=reply_timeout_s,
            on_push=on_push,
        )

    try:
        async with asyncio.timeout(settings.get("socket_connect_timeout")):
            if pool.connection_class is UnixDomainSocketConnection:
                _, pipe = await loop.create_unix_connection(make, settings["path"])
            elif pool.connection_class is Connection:
                _, pipe = await loop.create_connection(
                    make, settings.get("host", "localhost"), int(settings.get("port", 6379))
                )
            else:
                return None
    except (OSError, TimeoutError) as error:
        raise ConnectionError(f"Cannot connect to Redis: {error}") from error
    try:
        password, username = settings.get("password"), settings.get("username")
        if password:
            login = ("AUTH", username, password) if username else ("AUTH", password)
            reply = await pipe.send(login)
            if isinstance(reply, ResponseError):
                raise AuthenticationError(str(reply))
        if settings.get("db"):
            _raise_error_reply(await pipe.send(("SELECT", settings["db"])))
    except BaseException:
        pipe.close()
        raise
    return pipe


class ScriptPipeRedis(Redis):
    """redis-py's client, with its scripts sent down one shared pipelined connection."""

    def __init__(
        self, connection_pool: BlockingConnectionPool, *, reply_timeout_s: float = REPLY_TIMEOUT_S
    ) -> None:
        super().__init__(connection_pool=connection_pool)
        self.auto_close_connection_pool = True  # as `Redis.from_pool`: it owns the pool
        self._scripts_pool = connection_pool
        self._reply_timeout_s = reply_timeout_s
        self._pipe: RespPipe | None = None
        self._piped = True
        self._opening = asyncio.Lock()
        self._idle_blocking: list[RespPipe] = []  # connections for blocking pops, free

    async def _open_pipe(self) -> RespPipe | None:
        async with self._opening:
            if self._pipe is None or self._pipe.closed:
                self._pipe = await open_pipe(
                    self._scripts_pool, reply_timeout_s=self._reply_timeout_s
                )
                self._piped = self._pipe is not None
            return self._pipe

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] in BLOCKING_POPS and self._piped and self._bounded(args):
            return await self._blocking_pop(args, options)
        if args[0] not in PIPELINED or not self._piped:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        for attempt in (1, 2):
            pipe = self._pipe
            if pipe is None or pipe.closed:
                pipe = await self._open_pipe()
                if pipe is None:
                    return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
            try:
                return _raise_error_reply(await pipe.send(args))
            except ConnectionError:
                # As redis-py's pool is configured to (`make_redis`): a connection that
                # broke (Redis restarted) fails one command, which is sent again anew.
                # Not one left unanswered (TimeoutError): Redis may have run it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _bounded(self, args: tuple[Any, ...]) -> bool:
        """A pop that gives up (its last argument, in seconds) before the pipe's watchdog."""
        try:
            return 0 < float(args[-1]) < self._reply_timeout_s
        except (TypeError, ValueError):
            return False

    async def _blocking_pop(self, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        """A blocking pop on a connection no other command waits behind, kept for the
        next pop when it answers; as redis-py's, a connection that broke is tried anew
        once, and the reply is `(key, value)` or None."""
        for attempt in (1, 2):
            pipe = self._idle_blocking_pipe()
            if pipe is None:
                pipe = await open_pipe(self._scripts_pool, reply_timeout_s=self._reply_timeout_s)
                if pipe is None:
                    return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
            try:
                reply = _raise_error_reply(await pipe.send(args))
            except ConnectionError:
                pipe.close()
                if attempt == 2:
                    raise
                continue
            except BaseException:
                pipe.close()  # a caller that left: its reply may still come, on this connection
                raise
            self._idle_blocking.append(pipe)
            return tuple(reply) if reply else None
        raise AssertionError("unreachable")

    def _idle_blocking_pipe(self) -> RespPipe | None:
        """A kept pipe for blocking pops that is still open (Redis may have closed some)."""
        while self._idle_blocking:
            pipe = self._idle_blocking.pop()
            if not pipe.closed:
                return pipe
        return None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._pipe is not None:
            self._pipe.close()
        for pipe in self._idle_blocking:
            pipe.close()
        self._idle_blocking.clear()
        await super().aclose(close_connection_pool)
