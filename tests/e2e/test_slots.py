"""Local slots are shared by all dispatchers (they count in Redis), and a streaming
request that waits for one gets `: queued` heartbeats (DESIGN request path, 8-9)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.e2e.helpers import live_dispatchers, user, wait_until
from tests.stack import Process, Stack

ClientFor = Callable[..., openai.OpenAI]
MODEL = "llama3.2:3b"
SLOTS = 2
STAY_LOCAL = {"x-resayil-failover": "off"}  # a backlog would otherwise overflow to cloud


@pytest.fixture
def two_dispatchers(stack: Stack) -> Iterator[list[Process]]:
    """Two dispatchers with LOCAL_SLOTS=2; afterwards one with the stack's own settings."""
    wait_until(lambda: stack.sim_stats()["active"] == 0, 15)
    for process in live_dispatchers(stack):
        process.stop()
    try:
        # At DEBUG each logs every job it serves (the test counts them).
        started = [
            stack.start_dispatcher(LOCAL_SLOTS=str(SLOTS), LOG_LEVEL="debug") for _ in range(2)
        ]
        stack.sim_reset()
        yield started
    finally:
        for process in live_dispatchers(stack):
            process.stop()
        stack.start_dispatcher()


def test_two_dispatchers_never_exceed_the_shared_slots(
    stack: Stack, two_dispatchers: list[Process], client_for: ClientFor
) -> None:
    account = stack.new_account(credits=20)
    client = client_for(account.key, timeout=60, default_headers=STAY_LOCAL)
    with ThreadPoolExecutor(12) as pool:
        answers = [
            pool.submit(
                client.chat.completions.create,
                model=MODEL,
                messages=user(f"job {i} [[sim:tokens=8]] [[sim:delay_ms=40]]"),
            )
            for i in range(12)
        ]
        completions = [answer.result(timeout=60) for answer in answers]
    for completion in completions:
        assert completion.model == MODEL
        assert (completion.choices[0].message.content or "").split() == [
            f"tok{i}" for i in range(8)
        ]
    stats = stack.sim_stats()
    assert stats["max_active_seen"] == SLOTS
    assert (stats["requests"], stats["completed"]) == (12, 12)
    # Both processes took jobs, so the cap held across processes, not just within one.
    served = [process.log.read_text().count(" on local (") for process in two_dispatchers]
    assert sum(served) == 12 and min(served) > 0, served
    rows = stack.wait_usage(account.account_id, 12)
    assert [(r.status, r.credits_charged) for r in rows] == [("ok", 1)] * 12
    assert stack.balance(account.account_id) == 8 == stack.ledger_sum(account.account_id)


@pytest.mark.usefixtures("two_dispatchers")
def test_a_stream_waiting_for_a_slot_gets_heartbeats_then_its_answer(
    stack: Stack, client_for: ClientFor
) -> None:
    busy = client_for(stack.new_account(credits=10).key, timeout=60, default_headers=STAY_LOCAL)
    account = stack.new_account(credits=10)
    body = {"model": MODEL, "messages": user("hi [[sim:tokens=5]]"), "stream": True}
    with ThreadPoolExecutor(SLOTS) as pool, httpx.Client(timeout=30) as http:
        blockers = [
            pool.submit(
                busy.chat.completions.create,
                model=MODEL,
                messages=user("busy [[sim:tokens=1]] [[sim:first_delay_ms=2500]]"),
            )
            for _ in range(SLOTS)
        ]
        wait_until(lambda: stack.sim_stats()["active"] == SLOTS, 10)
        sent_at = time.monotonic()
        with http.stream(
            "POST",
            f"{stack.api_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {account.key}", **STAY_LOCAL},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines: list[str] = []
            first_data_after = 0.0
            for line in filter(None, response.iter_lines()):
                if not first_data_after and line.startswith("data: "):
                    first_data_after = time.monotonic() - sent_at
                lines.append(line)
        for blocker in blockers:
            blocker.result(timeout=30)
    data_at = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert data_at > 0 and all(line.startswith(": queued") for line in lines[:data_at])
    assert first_data_after > 1.0
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[data_at:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.split() == [f"tok{i}" for i in range(5)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [r.status for r in stack.wait_usage(account.account_id, 1)] == ["ok"]
