"""uvicorn's httptools protocol, the writes of one event-loop turn sent as one.

uvicorn writes a response's status line and headers, then each body chunk, each with
its own `transport.write`, and uvloop sends each at once. A JSON answer, or a stream's
status line and first frame (`HeldEventSourceResponse` sends them back to back), then
reach the client as two segments: two wake-ups for it and, on a busy machine, a context
switch between them. Writes made in one turn of the loop are joined and sent at its end;
a status line and headers wait only for the write that follows them (the body, or its
first frame), and both go out with it at once: the first frame of a stream is what its
time to first token waits for, and the rest of the turn can take a while (measured at
c=1: 56 against 22 us from the frame's send to the socket, p50).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# How uvicorn's write of a response's status line and headers begins.
RESPONSE_HEAD = b"HTTP/1."


class TurnBufferedTransport:
    """A transport whose writes wait for the end of the current loop turn, or a response
    head for the write after it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._head_held = False

    def write(self, data: bytes) -> None:
        if self._head_held:
            self._held.append(data)
            self.flush()
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)
        # A body that begins so (in a response without chunked encoding) only goes out
        # with the next write or at the turn's end, as it would have anyway.
        self._head_held = data.startswith(RESPONSE_HEAD)

    def flush(self) -> None:
        self._head_held = False
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
