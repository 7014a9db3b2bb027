"""The dispatcher's connections to Ollama: HTTP/1.1 on asyncio, parsed by httptools.

httpcore's own connections parse a response with h11, in Python, one event per chunk,
and Ollama streams a line per chunk: a 32-token answer is 34 rounds of Python parsing
and async-generator hand-offs on the dispatcher's loop, and its first byte reaches us
about 0.35 ms later than the bytes do. `UpstreamPool` keeps httpcore's interface (the
`stream()` context, `Response`, the `timeout` extension and its exceptions) and replaces
the connections: asyncio protocols feeding httptools' C parser (llhttp, the one uvicorn
uses), so a request is one write and a body chunk one callback.

Deliberately small: HTTP/1.1 only, no proxies, one request per connection at a time, idle
connections kept per origin. A response closed before its end closes its connection,
which is what stops Ollama generating; one read to its end returns it for reuse.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from typing import cast

import httpcore
import httptools

Origin = tuple[bytes, bytes, int]  # scheme, host, port
DEFAULT_PORTS = {b"http": 80, b"https": 443}
MAX_IDLE_PER_ORIGIN = 64
# Body bytes read ahead of the consumer before the socket stops being read.
READ_AHEAD = 256 * 1024


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection; `begin()` before each request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._active = False
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._complete = False
        self._ends_at_close = False
        self._keep_alive = False
        self._spoiled = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    @property
    def reusable(self) -> bool:
        return (
            self._complete
            and self._keep_alive
            and not self._spoiled
            and not self.closed
            and self._error is None
        )

    def begin(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._active = True
        self._status = None
        self._headers = []
        self._complete = False
        self._ends_at_close = False
        self._keep_alive = False

    def close(self) -> None:
        self._active = False
        if self.transport is not None:
            self.transport.close()

    async def send(self, data: bytes, timeout_s: float | None) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if self._writable is not None:  # the socket's buffer is full: wait for it to drain
            try:
                async with asyncio.timeout(timeout_s):
                    await self._writable
            except TimeoutError:
                raise httpcore.WriteTimeout("writing to the upstream timed out") from None

    async def read_head(self, timeout_s: float | None) -> tuple[int, list[tuple[bytes, bytes]]]:
        while self._status is None:
            await self._wait(timeout_s)
        return self._status, self._headers

    async def next_chunk(self, timeout_s: float | None) -> bytes | None:
        """The next piece of the body, or None at its end."""
        while not self._chunks:
            if self._complete:
                return None
            await self._wait(timeout_s)
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered < READ_AHEAD // 2 and not self.closed:
            assert self.transport is not None
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def _wait(self, timeout_s: float | None) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout_s):
                await self._waiter
        except TimeoutError:
            raise httpcore.ReadTimeout("reading from the upstream timed out") from None
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._active:  # a server that talks on an idle connection: not reusable
            self.closed = True
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(httpcore.RemoteProtocolError(f"malformed upstream response: {error}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if not self._active or self._complete:
            return
        if self._status is not None and self._ends_at_close:
            self._complete = True  # a body without length or chunks ends with the connection
            self._wake()
        elif self._status is None:
            self._fail(httpcore.ReadError("the upstream closed the connection"))
        else:
            self._fail(httpcore.RemoteProtocolError("the upstream response ended early"))

    def pause_writing(self) -> None:
        self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:  # a second response to one request: the connection is spoiled
            self._spoiled = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._spoiled:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._spoiled:
            return
        status = self._parser.get_status_code()
        if status < 200:  # informational: the real head follows
            self._headers = []
            return
        names = {name.lower(): value for name, value in self._headers}
        chunked = b"chunked" in names.get(b"transfer-encoding", b"").lower()
        self._ends_at_close = not chunked and b"content-length" not in names
        # Asked here: llhttp forgets it once the message is complete.
        self._keep_alive = self._parser.should_keep_alive()
        self._status = status
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._spoiled:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered >= READ_AHEAD and not self._reading_paused and not self.closed:
            assert self.transport is not None
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._status is None or self._spoiled:  # informational, or after the answer
            return
        self._complete = True
        self._active = False
        self._wake()


class UpstreamBody(AsyncIterable[bytes]):
    """A response body; closing it returns its connection for reuse, or closes it."""

    def __init__(
        self,
        pool: UpstreamPool,
        origin: Origin,
        connection: UpstreamConnection,
        timeout_s: float | None,
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection = connection
        self._timeout_s = timeout_s
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self._connection.next_chunk(self._timeout_s)) is not None:
            yield chunk

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._pool.release(self._origin, self._connection)


class UpstreamPool(httpcore.AsyncConnectionPool):
    """httpcore's pool interface over `UpstreamConnection`s."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
    ) -> None:
        super().__init__()
        self._ssl_context = ssl_context
        self._max_idle = max_idle_per_origin
        self._idle: dict[Origin, list[UpstreamConnection]] = {}

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        url = request.url
        port = url.port or DEFAULT_PORTS.get(url.scheme)
        if port is None:
            raise httpcore.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        origin: Origin = (url.scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        message = await _message(request)
        connection = self._idle_connection(origin) or await self._connect(
            origin, timeouts.get("connect")
        )
        try:
            connection.begin()
            await connection.send(message, timeouts.get("write"))
            status, headers = await connection.read_head(timeouts.get("read"))
        except BaseException:
            connection.close()
            raise
        body = UpstreamBody(self, origin, connection, timeouts.get("read"))
        return httpcore.Response(
            status, headers=headers, content=body, extensions={"http_version": b"HTTP/1.1"}
        )

    def release(self, origin: Origin, connection: UpstreamConnection) -> None:
        idle = self._idle.setdefault(origin, [])
        if connection.reusable and len(idle) < self._max_idle:
            idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    def _idle_connection(self, origin: Origin) -> UpstreamConnection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self, origin: Origin, timeout_s: float | None) -> UpstreamConnection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        where = f"{hostname}:{port}"
        secure = scheme == b"https"
        if secure and self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        context = self._ssl_context if secure else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout_s):
                _transport, connection = await loop.create_connection(
                    UpstreamConnection,
                    hostname,
                    port,
                    ssl=context,
                    server_hostname=hostname if secure else None,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"connecting to {where} timed out") from None
        except OSError as error:
            raise httpcore.ConnectError(f"cannot connect to {where}: {error}") from error
        return connection


async def _message(request: httpcore.Request) -> bytes:
    """The request line, headers and body as one piece of bytes."""
    assert isinstance(request.stream, AsyncIterable)
    body = b"".join([part async for part in request.stream])
    lines = [b"%b %b HTTP/1.1\r\n" % (request.method, request.url.target)]
    lines += [b"%b: %b\r\n" % (name, value) for name, value in request.headers]
    if any(name.lower() == b"transfer-encoding" for name, _ in request.headers):
        body = (b"%x\r\n%b\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    return b"".join(lines) + b"\r\n" + body
