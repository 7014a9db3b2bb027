"""Injected failures of the `/v2` API: the next N calls find the service down, 500 or empty.

`FaultGate` must be the outermost ASGI app (uvicorn's own `send`): "down" closes the
client's TCP connection without a byte of response, which no ASGI message can express.
"""

import asyncio
import threading
from typing import Any, Literal, get_args

from starlette.types import ASGIApp, Receive, Scope, Send

FaultMode = Literal["down", "500", "empty"]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)
API_PREFIX = "/v2/"
# What IIS in front of the real API answers when the application fails.
ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>Runtime Error</title></head>"
    b"<body><h1>Server Error in '/' Application.</h1><h2>Runtime Error</h2></body></html>"
)


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[str] = []

    def inject(self, mode: FaultMode, count: int = 1) -> None:
        if mode not in FAULT_MODES or count < 0:
            raise ValueError(f"fault mode must be one of {FAULT_MODES} and count >= 0")
        with self._lock:
            self._queue.extend([mode] * count)

    def take(self) -> str | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()


async def _respond(send: Send, status: int, body: bytes, content_type: bytes | None) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type:
        headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Send) -> None:
    cycle: Any = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle
    transport = getattr(cycle, "transport", None)
    if transport is None:
        # Not under uvicorn: promise a body and never send it, so the client still fails.
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
        )
        return
    transport.close()
    for _ in range(100):  # let uvicorn see the disconnect, so it does not answer a 500
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.005)


class FaultGate:
    def __init__(self, app: ASGIApp, faults: FaultInjector) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(API_PREFIX):
            mode = self.faults.take()
            if mode == "down":
                return await _drop_connection(send)
            if mode == "500":
                return await _respond(send, 500, ERROR_PAGE, b"text/html; charset=utf-8")
            if mode == "empty":
                return await _respond(send, 200, b"", None)
        await self.app(scope, receive, send)
