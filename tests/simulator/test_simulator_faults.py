"""Injected failures, client disconnects and the parallel-slot queue, over real sockets."""

import asyncio
import json
import time
from typing import Any

import httpx
import ollama
import pytest

from simulator.errors import SERVER_BUSY
from simulator.harness import SimulatorThread

MODEL = "llama3.2:3b"


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def wait_for_stats(http: httpx.Client, **expected: int) -> dict[str, int]:
    deadline = time.monotonic() + 1.0
    while True:
        stats: dict[str, int] = http.get("/_sim/stats").json()
        if all(stats[key] == value for key, value in expected.items()):
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("400", "invalid request (injected by simulator)"),
        ("404", f"model '{MODEL}' not found"),
        ("500", "model runner has unexpectedly stopped"),
        ("503", SERVER_BUSY),
        ("403", "ollama cloud is disabled: remote model is unavailable"),
        ("429", "you've reached your hourly usage limit, please wait or upgrade to continue"),
    ],
)
def test_prestream_errors(http: httpx.Client, code: str, error: str) -> None:
    response = http.post("/api/chat", json=chat_body(f"hi [[sim:error={code}]]"))
    assert response.status_code == int(code)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"].startswith(error)


def test_busy_message_has_two_spaces() -> None:
    assert SERVER_BUSY == "server busy, please try again.  maximum pending requests exceeded"


def test_cloud_401_carries_signin_url(http: httpx.Client) -> None:
    body = {
        "model": "qwen3.5:cloud",
        "messages": [{"role": "user", "content": "[[sim:error=401]]"}],
    }
    response = http.post("/api/chat", json=body)
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized",
        "signin_url": "https://ollama.com/connect?name=sim&key=abc",
    }


def test_midstream_error_raises_in_client(client: ollama.Client, http: httpx.Client) -> None:
    received = []
    with pytest.raises(ollama.ResponseError, match="unexpectedly stopped"):
        for part in client.chat(
            model=MODEL,
            messages=[{"role": "user", "content": "x [[sim:error=midstream]]"}],
            stream=True,
        ):
            received.append(part.message.content)
    assert received == ["tok0", *(f" tok{i}" for i in range(1, 16))]
    whole = http.post("/api/chat", json=chat_body("x [[sim:error=midstream]]", stream=False))
    assert whole.status_code == 500
    assert http.get("/_sim/stats").json()["errors"] == 2


def test_truncate_closes_without_done_line(http: httpx.Client) -> None:
    response = http.post("/api/chat", json=chat_body("x [[sim:error=truncate,tokens=6]]"))
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert response.status_code == 200
    assert [line["done"] for line in lines] == [False] * 3


def test_split_lines_still_parse(client: ollama.Client) -> None:
    parts = list(
        client.chat(
            model=MODEL,
            messages=[{"role": "user", "content": "[[sim:split,tokens=4]]"}],
            stream=True,
        )
    )
    assert [p.done for p in parts] == [False] * 4 + [True]


def test_fail_rate_config_and_reset(http: httpx.Client) -> None:
    assert http.post("/_sim/config", json={"fail_rate": 1.0}).json()["fail_rate"] == 1.0
    failed = http.post("/api/chat", json=chat_body("hi"))
    assert failed.status_code == 500
    assert http.post("/_sim/config", json={"fail_rate": 2}).status_code == 400
    assert http.post("/_sim/config", json={"bogus": 1}).status_code == 400
    http.post("/_sim/config", json={"fail_rate": 0, "tokens": 2, "version": "0.40.1"})
    assert http.post("/api/chat", json=chat_body("hi", stream=False)).json()["eval_count"] == 2
    assert http.get("/api/version").json() == {"version": "0.40.1"}
    assert http.get("/_sim/stats").json()["requests"] == 2
    reset = http.post("/_sim/reset").json()
    assert reset == dict.fromkeys(reset, 0)


def test_first_delay_holds_back_headers(http: httpx.Client) -> None:
    began = time.monotonic()
    with http.stream("POST", "/api/chat", json=chat_body("[[sim:first_delay_ms=200,tokens=1]]")):
        assert time.monotonic() - began >= 0.2


def test_disconnect_stops_generation(http: httpx.Client) -> None:
    body = chat_body("[[sim:tokens=1000,delay_ms=10]]")
    with http.stream("POST", "/api/chat", json=body) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["message"]["content"] == "tok0"
        assert http.get("/_sim/stats").json()["active"] == 1
    stats = wait_for_stats(http, active=0, cancelled=1)
    assert stats["completed"] == 0


async def test_parallel_limit_queues_without_rejecting(sim: SimulatorThread) -> None:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
        await http.post("/_sim/config", json={"num_parallel": 2})
        body = chat_body("[[sim:tokens=5,delay_ms=40]]", stream=False)
        responses = await asyncio.gather(*(http.post("/api/chat", json=body) for _ in range(4)))
        stats = (await http.get("/_sim/stats")).json()
    assert [r.status_code for r in responses] == [200] * 4
    assert (stats["max_active_seen"], stats["completed"], stats["waiting"]) == (2, 4, 0)


async def await_stats(http: httpx.AsyncClient, **expected: int) -> dict[str, int]:
    for _ in range(100):
        stats: dict[str, int] = (await http.get("/_sim/stats")).json()
        if all(stats[key] == value for key, value in expected.items()):
            return stats
        await asyncio.sleep(0.01)
    raise AssertionError(stats)


async def test_request_abandoned_while_waiting(sim: SimulatorThread) -> None:
    slow = chat_body("[[sim:delay_ms=10,tokens=30]]")
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
        await http.post("/_sim/config", json={"num_parallel": 1})
        first = asyncio.create_task(http.post("/api/chat", json=slow))
        await await_stats(http, active=1)
        second = asyncio.create_task(http.post("/api/chat", json=chat_body("hi")))
        await await_stats(http, waiting=1)
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        stats = await await_stats(http, waiting=0, cancelled=1)
        assert stats["active"] == 1
        assert (await first).status_code == 200
        await await_stats(http, active=0, completed=1)
