"""The bench's load clients measure a real streaming server alike, and fail clearly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.lean_http import HTTPFailure, LeanHTTP
from bench.load import ANSWER_TOKENS, CLIENTS, RequestFailed, Target, make_client, run_level
from simulator.config import SimConfig
from simulator.harness import SimulatorThread
from simulator.threaded import ServerThread


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimConfig(tokens=ANSWER_TOKENS, num_parallel=8)) as running:
        yield running


async def _echo(request: Request) -> Response:
    body = await request.json()
    headers = {"connection": "close"} if body.get("close") else {}
    return JSONResponse(
        {"got": body, "auth": request.headers.get("authorization")}, headers=headers
    )


async def _lines(request: Request) -> Response:
    async def lines() -> Iterator[bytes]:  # type: ignore[misc]
        # A line split across two writes, and a last line without its newline.
        yield b'{"message": {"content": "a"}}\n{"message": {"con'
        yield b'tent": "b"}}\n'
        yield b'{"message": {"content": "c"}}'

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    app = Starlette(
        routes=[Route("/echo", _echo, methods=["POST"]), Route("/lines", _lines, methods=["POST"])]
    )
    with ServerThread(app) as running:
        yield running


def request_once(target: Target, kind: str = "lean") -> None:
    """One request with a client of its own."""

    async def send() -> None:
        client = make_client(1, kind)
        try:
            await client.request(target)
        finally:
            await client.aclose()

    asyncio.run(send())


@pytest.mark.parametrize("kind", CLIENTS)
def test_each_client_measures_a_streamed_answer(sim: SimulatorThread, kind: str) -> None:
    async def measure() -> list[float]:
        client = make_client(2, kind)
        try:
            run = await run_level(client, Target.direct(sim.url), concurrency=2, requests=6)
        finally:
            await client.aclose()
        assert run.errors == []
        assert [sample.chunks for sample in run.samples] == [ANSWER_TOKENS] * 6
        return [sample.total_s - sample.ttft_s for sample in run.samples]

    assert all(after_first >= 0 for after_first in asyncio.run(measure()))


@pytest.mark.parametrize("kind", CLIENTS)
def test_a_refused_request_fails_with_its_status_and_body(sim: SimulatorThread, kind: str) -> None:
    target = Target(
        "direct",
        f"{sim.url}/api/chat",
        {"model": "no-such-model", "messages": []},
        {},
        Target.direct(sim.url).is_content,
    )

    with pytest.raises(RequestFailed, match=r"HTTP 404.*not found"):
        request_once(target, kind)


@pytest.mark.parametrize("kind", CLIENTS)
def test_no_server_is_a_failed_request(kind: str) -> None:
    target = Target.direct("http://127.0.0.1:9")  # the discard port: nothing listens

    with pytest.raises(RequestFailed):
        request_once(target, kind)


def test_lines_are_read_whole_across_writes_and_the_last_without_newline(
    server: ServerThread,
) -> None:
    seen: list[str] = []

    def is_content(line: str) -> bool:
        seen.append(line)
        return bool(line)

    target = Target("lines", f"{server.url}/lines", {}, {}, is_content)

    with pytest.raises(RequestFailed, match=f"expected {ANSWER_TOKENS} content chunks, got 3"):
        request_once(target)
    assert [json.loads(line)["message"]["content"] for line in seen if line] == ["a", "b", "c"]


def test_lean_http_reuses_a_kept_alive_connection_and_not_a_closed_one(
    server: ServerThread,
) -> None:
    async def exchange(http: LeanHTTP, body: dict[str, object]) -> dict[str, object]:
        async with http.post(f"{server.url}/echo", body, {"Authorization": "Bearer k"}) as (
            status,
            parts,
        ):
            assert status == 200
            answer: dict[str, object] = json.loads(b"".join([part async for part in parts]))
            return answer

    async def run() -> None:
        http = LeanHTTP(timeout_s=5)
        try:
            assert await exchange(http, {"n": 1}) == {"got": {"n": 1}, "auth": "Bearer k"}
            kept = http._idle[next(iter(http._idle))]
            assert len(kept) == 1
            first = kept[0]
            assert await exchange(http, {"n": 2}) == {"got": {"n": 2}, "auth": "Bearer k"}
            assert kept == [first]  # the same connection, used again
            await exchange(http, {"close": True})
            assert kept == []  # the server said close: not kept
            assert (await exchange(http, {"n": 3}))["got"] == {"n": 3}  # a new one
        finally:
            await http.aclose()

    asyncio.run(run())


def test_lean_http_bounds_the_whole_exchange(sim: SimulatorThread) -> None:
    sim.state.update_config({"token_delay_ms": 200})  # 32 tokens: over 6 s

    async def run() -> None:
        http = LeanHTTP(timeout_s=0.5)
        try:
            body = Target.direct(sim.url).body
            async with http.post(f"{sim.url}/api/chat", body, {}) as (_status, parts):
                async for _part in parts:
                    pass
        finally:
            await http.aclose()

    try:
        with pytest.raises(HTTPFailure, match=r"no complete answer within 0\.5 s"):
            asyncio.run(run())
    finally:
        sim.state.update_config({"token_delay_ms": 0})
