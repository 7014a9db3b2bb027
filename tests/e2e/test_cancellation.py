"""A client that goes away cancels its job: dequeued while waiting, upstream stopped
within a second while running (DESIGN request path, step 10)."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from broker import keys
from schema.models import CreditEntry, UsageRecord
from tests.stack import Stack

SLOW = "count slowly [[sim:tokens=400]] [[sim:delay_ms=20]]"
LOCAL_SLOTS = 4  # the stack's dispatcher
STOP_WITHIN_S = 1.0


def chat_body(content: str, *, stream: bool) -> dict[str, Any]:
    return {
        "model": "llama3.2:3b",
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
    }


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `condition` held, or None if it did not within `timeout`."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.01)


@pytest.fixture
def queues(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url)
    yield client
    client.close()


@pytest.fixture
def idle_stack(stack: Stack, queues: redis.Redis) -> Stack:
    """The stack with nothing queued or generating (an earlier test may be winding down)."""

    def idle() -> bool:
        stats = stack.sim_stats()
        waiting = queues.zcard(keys.queue("local")) + queues.zcard(keys.inflight("local"))
        return stats["active"] == 0 and stats["waiting"] == 0 and waiting == 0

    assert wait_until(idle, 15) is not None, "the stack did not become idle"
    stack.sim_reset()
    return stack


def upstream_stopped(stack: Stack, cancelled_before: int) -> Callable[[], bool]:
    def stopped() -> bool:
        stats = stack.sim_stats()
        return bool(stats["active"] == 0 and stats["cancelled"] > cancelled_before)

    return stopped


def refunds(stack: Stack, request_id: str) -> list[int]:
    with stack.session() as session:
        return list(
            session.scalars(
                select(CreditEntry.amount).where(
                    CreditEntry.request_id == request_id, CreditEntry.kind == "refund"
                )
            )
        )


def only_row(stack: Stack, account_id: int) -> UsageRecord:
    rows = stack.wait_usage(account_id, 1)
    assert len(rows) == 1
    return rows[0]


def test_stream_disconnect_stops_the_upstream_within_a_second(
    idle_stack: Stack,
) -> None:
    stack = idle_stack
    account = stack.new_account(credits=10)
    url = f"{stack.api_url}/v1/chat/completions"
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST", url, json=chat_body(SLOW, stream=True), headers=bearer(account.key)
        ) as response,
    ):
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        data = [line for line in itertools.islice(lines, 8) if line.startswith("data: ")]
        assert len(data) == 4  # the role chunk and three tokens, still generating
        assert stack.sim_stats()["active"] == 1
    elapsed = wait_until(upstream_stopped(stack, 0), 1.5)
    assert elapsed is not None, f"upstream still generating 1.5 s after close: {stack.sim_stats()}"
    print(f"upstream stopped {elapsed:.3f} s after the client left")  # shown with -rP
    assert elapsed < STOP_WITHIN_S
    row = only_row(stack, account.account_id)
    assert (row.request_id, row.status, row.error_code) == (
        request_id,
        "cancelled",
        "client_cancelled",
    )
    assert row.credits_charged == 1  # output went out before the client left
    assert refunds(stack, request_id) == []
    assert stack.balance(account.account_id) == 9 == stack.ledger_sum(account.account_id)


def test_disconnect_before_any_output_stops_the_upstream_and_refunds(idle_stack: Stack) -> None:
    stack = idle_stack
    account = stack.new_account(credits=10)
    body = chat_body("think long [[sim:first_delay_ms=5000]]", stream=True)
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST", f"{stack.api_url}/v1/chat/completions", json=body, headers=bearer(account.key)
        ) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()  # held: dropping it would close the connection
        assert next(lines).startswith(": queued")  # running, but nothing out yet
        assert stack.sim_stats()["active"] == 1
    elapsed = wait_until(upstream_stopped(stack, 0), 1.5)
    assert elapsed is not None, f"upstream still generating 1.5 s after close: {stack.sim_stats()}"
    assert elapsed < STOP_WITHIN_S
    row = only_row(stack, account.account_id)
    assert (row.status, row.credits_charged) == ("cancelled", 0)
    assert refunds(stack, row.request_id) == [1]
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)


def test_non_stream_client_timeout_stops_the_upstream_within_a_second(
    idle_stack: Stack,
) -> None:
    stack = idle_stack
    account = stack.new_account(credits=10)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{stack.api_url}/v1/chat/completions",
            json=chat_body(SLOW, stream=False),
            headers=bearer(account.key),
            timeout=httpx.Timeout(30, read=1.0),
        )
    elapsed = wait_until(upstream_stopped(stack, 0), 1.5)
    assert elapsed is not None, f"upstream still generating 1.5 s after close: {stack.sim_stats()}"
    print(f"upstream stopped {elapsed:.3f} s after the client left")  # shown with -rP
    assert elapsed < STOP_WITHIN_S
    assert stack.sim_stats()["completed"] == 0
    row = only_row(stack, account.account_id)
    assert row.status == "cancelled"
    balance = stack.balance(account.account_id)
    assert balance == 10 - row.credits_charged == stack.ledger_sum(account.account_id)


@contextlib.contextmanager
def saturated_slots(stack: Stack, http: httpx.Client) -> Iterator[list[str]]:
    """LOCAL_SLOTS slow streams generating (their request ids); closed on the way out."""
    account = stack.new_account(credits=10)
    url = f"{stack.api_url}/v1/chat/completions"
    with contextlib.ExitStack() as streams:
        request_ids = []
        for _ in range(LOCAL_SLOTS):
            response = streams.enter_context(
                http.stream(
                    "POST", url, json=chat_body(SLOW, stream=True), headers=bearer(account.key)
                )
            )
            assert response.status_code == 200
            request_ids.append(response.headers["x-request-id"])
        assert wait_until(lambda: stack.sim_stats()["active"] == LOCAL_SLOTS, 5) is not None
        yield request_ids


def disconnect_after_heartbeat(stack: Stack, http: httpx.Client, key: str) -> None:
    url = f"{stack.api_url}/v1/chat/completions"
    body = chat_body("queued [[sim:tokens=3]]", stream=True)
    with http.stream("POST", url, json=body, headers=bearer(key)) as response:
        assert response.status_code == 200
        assert next(response.iter_lines()).startswith(": queued")


def disconnect_before_first_byte(stack: Stack, http: httpx.Client, key: str) -> None:
    url = f"{stack.api_url}/v1/chat/completions"
    for stream in (True, False):
        body = chat_body("queued [[sim:tokens=3]]", stream=stream)
        with pytest.raises(httpx.ReadTimeout):
            http.post(url, json=body, headers=bearer(key), timeout=httpx.Timeout(30, read=0.3))


@pytest.mark.parametrize("leave", [disconnect_after_heartbeat, disconnect_before_first_byte])
def test_a_queued_request_is_removed_on_disconnect(
    idle_stack: Stack, queues: redis.Redis, leave: Callable[[Stack, httpx.Client, str], Any]
) -> None:
    stack = idle_stack
    account = stack.new_account(credits=10)
    with httpx.Client(timeout=30) as http:
        with saturated_slots(stack, http) as slow:
            leave(stack, http, account.key)
            left = 2 if leave is disconnect_before_first_byte else 1
            rows = stack.wait_usage(account.account_id, left)
            assert len(rows) == left
            assert {r.status for r in rows} == {"cancelled"}
            assert queues.zcard(keys.queue("local")) == 0
            assert stack.sim_stats()["requests"] == LOCAL_SLOTS
        # The slots free up; a job left in the queue would now reach the simulator.
        stopped = wait_until(lambda: stack.sim_stats()["active"] == 0, 5)
        jobs = {i: queues.hmget(keys.job(i), "claim", "sent", "cancelled") for i in slow}
        assert stopped is not None, f"slow jobs not stopped: {stack.sim_stats()} {jobs}"
        time.sleep(0.3)
    assert stack.sim_stats()["requests"] == LOCAL_SLOTS
    for row in rows:
        assert (row.credits_charged, row.error_code) == (0, "client_cancelled")
        assert refunds(stack, row.request_id) == [1]
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)
