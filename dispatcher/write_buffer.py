"""A request's writes held until its response is read, so it goes out as one segment.

httpcore writes a request's head and its body separately. Over loopback each write
wakes the upstream server, which parses the head and then waits for the body: a second
wake-up (and on a busy machine a second context switch) before Ollama can start. Held
until the first read (or until `FLUSH_AT` bytes are waiting, so a large body still
streams), the whole request is one write.
"""

# ruff: noqa: ASYNC109 -- httpcore's stream and backend interface takes timeouts as parameters

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

FLUSH_AT = 64 * 1024

# httpcore's socket option: (level, option, value) or (level, option, None, length).
SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class WriteBufferedStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._held: list[bytes] = []
        self._held_bytes = 0

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        self._held.append(buffer)
        self._held_bytes += len(buffer)
        if self._held_bytes >= FLUSH_AT:
            await self.flush(timeout)

    async def flush(self, timeout: float | None = None) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            self._held_bytes = 0
            await self._stream.write(data, timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self.flush(timeout)
        return await self._stream.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held.clear()  # a request closed unread was abandoned: nothing to send
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        await self.flush(timeout)
        tls = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return WriteBufferedStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class WriteBufferedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio backend, its streams holding writes until a read."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return WriteBufferedStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(path, timeout, socket_options)
        return WriteBufferedStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
