"""uvicorn's httptools protocol, the writes of one event-loop turn sent as one.

uvicorn writes a response's status line and headers, then each body chunk, each with
its own `transport.write`, and uvloop sends each at once. A JSON answer, or a stream's
status line and first frame (`HeldEventSourceResponse` sends them back to back), then
reach the client as two segments: two wake-ups for it and, on a busy machine, a context
switch between them. Writes made in one turn of the loop are joined and sent at its end.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TurnBufferedTransport:
    """A transport whose writes wait for the end of the current loop turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TurnBufferedHttpToolsProtocol(HttpToolsProtocol):
    """Pass as uvicorn's `http` protocol class."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: cast, do not check.
        real = cast(asyncio.Transport, transport)
        buffered: Any = TurnBufferedTransport(real, asyncio.get_running_loop())
        super().connection_made(buffered)
