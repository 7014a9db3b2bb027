"""A lean HTTP/1.1 client for the load generator: an asyncio protocol and httptools' parser.

The bench's client shares the 2 cores with the system it measures, so its CPU is taken
from the gateway or the simulator mid-request: on this machine httpx costs about 1 ms of
client CPU per streamed gateway request, and it shows in the gateway's time to first
token, more in the machine's slow phases (on a real deployment the client is elsewhere).
This client writes the request in one send and gets the body back de-chunked by
httptools (llhttp, the parser uvicorn uses), in the pieces it arrived in. Connections
are kept alive and reused, one per request in flight, as httpx's pool keeps them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

Address = tuple[str, int]


class HTTPFailure(Exception):
    """The exchange failed: no connection, a broken or malformed response, a timeout."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._parts: list[bytes] = []
        self._headers_done = False
        self._complete = False
        self._error: HTTPFailure | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.status = 0
        self.keep_alive = False

    @property
    def reusable(self) -> bool:
        return self._complete and self.keep_alive and self._error is None

    @property
    def broken(self) -> bool:
        return self._error is not None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, do not check.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(HTTPFailure(f"malformed response: {error}"))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._complete:
            self._fail(HTTPFailure(f"connection closed mid-response: {exc or 'by the server'}"))
        self._error = self._error or HTTPFailure("connection closed")
        self._wake()

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._parts.append(body)

    def on_message_complete(self) -> None:
        self._complete = True

    # the exchange
    def send(self, request: bytes) -> None:
        assert self._transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._parts, self._headers_done, self._complete = [], False, False
        self._transport.write(request)

    async def headers(self) -> int:
        """The response's status, once its headers are in."""
        while not self._headers_done:
            await self._wait()
        return self.status

    async def body(self) -> AsyncIterator[bytes]:
        """The body, de-chunked, in the pieces it arrived in."""
        while True:
            if self._parts:
                parts, self._parts = self._parts, []
                yield b"".join(parts)
            if self._complete:
                return
            await self._wait()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None and not self._complete:
            raise self._error

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: HTTPFailure) -> None:
        self._error = self._error or error
        self.close()


class LeanHTTP:
    """POST a JSON body and stream the answer back, over reused connections."""

    def __init__(self, *, timeout_s: float = 30.0, connect_timeout_s: float = 5.0) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._idle: dict[Address, list[_Connection]] = {}

    @asynccontextmanager
    async def post(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        """The status and the body pieces of `POST url` with `body` as JSON.

        Failures of any kind raise `HTTPFailure`; the whole exchange is bounded by
        `timeout_s`. A connection goes back for reuse only once its response was read
        to the end.
        """
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http:// URLs: {url}")
        address = (parts.hostname, parts.port or 80)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        payload = json.dumps(body).encode()
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "Content-Type: application/json",
            "Accept: */*",
            f"Content-Length: {len(payload)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        try:
            async with asyncio.timeout(self.timeout_s):
                connection = await self._connection(address)
                try:
                    connection.send(request)
                    yield await connection.headers(), connection.body()
                finally:
                    self._give_back(address, connection)
        except TimeoutError as error:
            raise HTTPFailure(f"no complete answer within {self.timeout_s:g} s") from error

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _connection(self, address: Address) -> _Connection:
        idle = self._idle.get(address, [])
        while idle:
            connection = idle.pop()
            if not connection.broken:  # not closed by the server while it was idle
                return connection
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _transport, connection = await loop.create_connection(_Connection, *address)
        except (OSError, TimeoutError) as error:
            raise HTTPFailure(f"cannot connect to {address[0]}:{address[1]}: {error}") from error
        return connection

    def _give_back(self, address: Address, connection: _Connection) -> None:
        if connection.reusable:
            self._idle.setdefault(address, []).append(connection)
        else:
            connection.close()
