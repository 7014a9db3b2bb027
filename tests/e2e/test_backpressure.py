"""Backpressure: a capped queue, a maximum wait, a per-account concurrency cap."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import body, saturated, unlimited, wait_backlog
from tests.stack import Stack

STAY = {"x-resayil-failover": "off"}


@pytest.fixture
def strict_api(stack: Stack) -> Iterator[str]:
    """A second api process on the same system, with tight backpressure settings."""
    tight = {
        "MAX_QUEUED_JOBS": "3",
        "MAX_QUEUE_WAIT_S": "1.5",
        "MAX_CONCURRENT_PER_ACCOUNT": "2",
        "HEARTBEAT_INTERVAL_S": "0.3",
        "FIRST_BYTE_WAIT_S": "0.2",
    }
    with stack.extra_api("api-strict", **tight) as url:
        yield url


def post(url: str, key: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body(text),
        headers={"Authorization": f"Bearer {key}", **STAY},
        timeout=30,
    )


def test_a_job_waiting_too_long_ends_with_a_refund(stack: Stack, strict_api: str) -> None:
    account = unlimited(stack, credits=10)
    with saturated(stack, unlimited(stack).key):
        started = time.monotonic()
        response = post(strict_api, account.key, "wait")
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "queue_timeout"
    assert 1.5 <= waited < 3.5
    rows = stack.wait_usage(account.account_id, 1)
    assert [(r.status, r.error_code, r.credits_charged) for r in rows] == [
        ("error", "queue_timeout", 0)
    ]
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)


def test_a_waiting_stream_sees_its_position_then_the_timeout(stack: Stack, strict_api: str) -> None:
    account = unlimited(stack, credits=10)
    with (
        saturated(stack, unlimited(stack).key),
        httpx.stream(
            "POST",
            f"{strict_api}/v1/chat/completions",
            json=body("wait", stream=True),
            headers={"Authorization": f"Bearer {account.key}", **STAY},
            timeout=30,
        ) as response,
    ):
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert ": queued position=1" in lines
    assert lines[-1].startswith("data: {") and '"queue_timeout"' in lines[-1]
    assert stack.wait_usage(account.account_id, 1)[0].error_code == "queue_timeout"


def test_a_full_queue_answers_503_with_retry_after(stack: Stack, strict_api: str) -> None:
    waiter = unlimited(stack, credits=10)
    account = unlimited(stack, credits=10)
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool,
        saturated(stack, unlimited(stack).key),
    ):
        for i in range(3):
            pool.submit(post, strict_api if i else stack.api_url, waiter.key, "wait")
            wait_backlog(stack, i + 1)
        refused = post(strict_api, account.key, "one too many")
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "queue_full"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-should-retry"] in {"true", "false"}
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)
    assert stack.usage(account.account_id) == []


def test_per_account_concurrency_cap_is_429(stack: Stack, strict_api: str) -> None:
    account = unlimited(stack, credits=10)
    slow = "[[sim:tokens=100]] [[sim:delay_ms=10]]"
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        running = [pool.submit(post, strict_api, account.key, slow) for _ in range(2)]
        deadline = time.monotonic() + 5
        while stack.sim_stats()["active"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = post(strict_api, account.key, "third")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_concurrent_requests"
        assert refused.headers["retry-after"] == "1"
        assert all(f.result().status_code == 200 for f in running)
    # Slots come back when responses finish.
    assert post(strict_api, account.key, "after").status_code == 200


def test_a_full_local_queue_overflows_rather_than_refusing(stack: Stack, strict_api: str) -> None:
    waiter = unlimited(stack, credits=10)
    account = unlimited(stack, credits=10)
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool,
        saturated(stack, unlimited(stack).key),
    ):
        for i in range(3):
            pool.submit(post, stack.api_url, waiter.key, "wait")
            wait_backlog(stack, i + 1)
        # The local queue is at its cap (3) but the cloud has room: no 503 for this one.
        overflowing = httpx.post(
            f"{strict_api}/v1/chat/completions",
            json=body("overflow"),
            headers={"Authorization": f"Bearer {account.key}"},
            timeout=30,
        )
        assert overflowing.status_code == 200, overflowing.text
        assert overflowing.headers["x-resayil-served-by"] == "cloud"
        # Staying local, it is refused before anything is reserved.
        refused = post(strict_api, account.key, "stay local")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "queue_full"
    rows = stack.wait_usage(account.account_id, 1)
    assert [(r.pool, r.credits_charged) for r in rows] == [("cloud", 2)]
    assert stack.balance(account.account_id) == 8 == stack.ledger_sum(account.account_id)
