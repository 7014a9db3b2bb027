"""`TurnBufferedHttpToolsProtocol` under a real uvicorn: what one loop turn writes leaves
in one write, a later write in its own, a head goes out with the write after it without
waiting for the turn's end, and the bytes on the wire are unchanged."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from portal.http_protocol import TurnBufferedHttpToolsProtocol


class RecordingTransport:
    """The real transport, recording each write that reaches it, and when."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(data)
        WRITTEN_AT.append(time.monotonic())
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []
WRITTEN_AT: list[float] = []
RESUMED_AT: list[float] = []


class RecordedProtocol(TurnBufferedHttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        recording: Any = RecordingTransport(cast(asyncio.Transport, transport), WRITES)
        super().connection_made(recording)


async def answer(request: Request) -> Response:
    return JSONResponse({"answer": "مرحبا"})


async def stream(request: Request) -> Response:
    async def frames() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        await asyncio.sleep(0.05)  # a later turn
        yield b"data: two\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream")


async def busy_after_first_frame(request: Request) -> Response:
    async def frames() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        RESUMED_AT.append(time.monotonic())
        time.sleep(0.1)  # noqa: ASYNC251 - on purpose: the rest of this loop turn is slow
        yield b"data: second\n\n"

    return StreamingResponse(frames(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/answer", answer),
            Route("/stream", stream),
            Route("/busy", busy_after_first_frame),
        ]
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", http=RecordedProtocol, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_json_answer_is_one_write(server_url: str) -> None:
    WRITES.clear()
    response = httpx.get(f"{server_url}/answer")
    assert response.status_code == 200 and response.json() == {"answer": "مرحبا"}
    assert len(WRITES) == 1  # uvicorn alone writes the head, then the body
    head, _, body = WRITES[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == response.content


def test_a_stream_sends_its_head_with_the_first_frame_and_later_frames_alone(
    server_url: str,
) -> None:
    WRITES.clear()
    with httpx.Client() as client:
        response = client.get(f"{server_url}/stream")
        assert response.text == "data: one\n\ndata: two\n\n"
    assert len(WRITES) == 2
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert WRITES[0].endswith(b"\r\n\r\nb\r\ndata: one\n\n\r\n")
    assert WRITES[1] == b"b\r\ndata: two\n\n\r\n0\r\n\r\n"


def test_a_head_and_the_frame_after_it_go_out_before_the_turn_ends(server_url: str) -> None:
    WRITES.clear()
    WRITTEN_AT.clear()
    RESUMED_AT.clear()
    response = httpx.get(f"{server_url}/busy")
    assert response.text == "data: first\n\ndata: second\n\n"
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert WRITES[0].endswith(b"\r\n\r\nd\r\ndata: first\n\n\r\n")
    # Written as the first frame was sent: before its generator went on, not 0.1 s later.
    assert WRITTEN_AT[0] < RESUMED_AT[0]
