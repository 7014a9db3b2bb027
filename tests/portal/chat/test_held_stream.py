"""`HeldEventSourceResponse` served by a real uvicorn: the status line waits for the first
body, a refusal before it answers in its own shape, and a client that leaves while it
waits ends the body."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.chat.held_stream import HeldEventSourceResponse
from simulator.threaded import ServerThread

FIRST_FRAME_AFTER_S = 0.5


class Recorded:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[str] = []

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def wait_for(self, event: str, timeout_s: float = 5) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if event in self.events:
                    return True
            time.sleep(0.01)
        return False


def make_app(recorded: Recorded) -> Starlette:
    async def frames(response: HeldEventSourceResponse, wait_s: float) -> AsyncIterator[bytes]:
        try:
            recorded.add("body started")
            await asyncio.sleep(wait_s)
            yield b"data: one\n\n"
            yield b"data: two\n\n"
        finally:
            recorded.add("body ended")

    async def refused(response: HeldEventSourceResponse) -> AsyncIterator[bytes]:
        await asyncio.sleep(0.05)
        response.refuse(
            JSONResponse({"error": {"code": "upstream_busy"}}, 503, headers={"retry-after": "7"})
        )
        return
        yield b"never"  # an async generator all the same

    async def stream(request: Request) -> Response:
        wait_s = float(request.query_params.get("wait", FIRST_FRAME_AFTER_S))
        response = HeldEventSourceResponse(
            refused if request.query_params.get("refuse") else lambda r: frames(r, wait_s),
            headers={"x-request-id": "job-1"},
        )
        response.background = BackgroundTask(recorded.add, "background ran")
        return response

    return Starlette(routes=[Route("/stream", stream)])


@pytest.fixture
def served() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()
    with ServerThread(make_app(recorded)) as server:
        yield server.url, recorded


def test_the_status_line_goes_out_with_the_first_body(served: tuple[str, Recorded]) -> None:
    url, recorded = served
    with httpx.Client(timeout=10) as http:
        sent = time.monotonic()
        with http.stream("GET", f"{url}/stream") as response:
            headers_after = time.monotonic() - sent
            body = response.read().decode()
    assert recorded.wait_for("background ran")
    # Without the hold, sse-starlette sends the status line at once.
    assert headers_after >= FIRST_FRAME_AFTER_S * 0.9
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"] == "job-1"
    assert body == "data: one\n\ndata: two\n\n"


def test_a_refusal_before_the_first_body_is_answered_instead(
    served: tuple[str, Recorded],
) -> None:
    url, recorded = served
    response = httpx.get(f"{url}/stream?refuse=1", timeout=10)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "7"
    assert "x-request-id" not in response.headers
    assert response.json() == {"error": {"code": "upstream_busy"}}
    assert recorded.wait_for("background ran")


def test_a_client_that_leaves_before_the_first_body_ends_it(
    served: tuple[str, Recorded],
) -> None:
    url, recorded = served
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{url}/stream?wait=30", timeout=httpx.Timeout(10, read=0.2))
    assert recorded.wait_for("body ended", timeout_s=5)
    assert "body started" in recorded.events
