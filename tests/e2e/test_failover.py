"""Overflow to the cloud when the local pool is backed up, within the daily budget."""

from __future__ import annotations

import concurrent.futures
from datetime import UTC, datetime

import redis
from sqlalchemy import select

from broker import keys
from broker.budget import budget_day
from schema.models import AdminAlert
from tests.e2e.helpers import LOCAL, body, post, saturated, unlimited, wait_backlog
from tests.stack import Stack


def test_fourth_waiter_and_later_go_to_the_cloud(stack: Stack) -> None:
    busy = unlimited(stack)
    account = unlimited(stack)
    # The pool is the outer block: its exit waits for the waiters, which need the slots
    # that leaving `saturated` frees.
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool,
        saturated(stack, busy.key),
    ):
        waiting = []
        for i in range(3):
            waiting.append(pool.submit(post, stack.api_url, account.key, body("wait")))
            wait_backlog(stack, i + 1)
        # The local pool is full and three wait: the next ones overflow and finish at once.
        overflowed = [post(stack.api_url, account.key, body("hello")) for _ in range(2)]
        opted_out = pool.submit(
            post, stack.api_url, account.key, body("stay"), **{"x-resayil-failover": "off"}
        )
        wait_backlog(stack, 4)
        for response in overflowed:
            assert response.status_code == 200, response.text
            assert response.headers["x-resayil-served-by"] == "cloud"
            assert response.json()["model"] == "qwen3.5:cloud"
        assert not any(f.done() for f in waiting)
    for future in [*waiting, opted_out]:
        response = future.result(timeout=60)
        assert response.status_code == 200
        assert response.headers["x-resayil-served-by"] == "local"
        assert response.json()["model"] == LOCAL
    rows = stack.wait_usage(account.account_id, 6)
    charged = sorted((r.pool, r.model_served, r.credits_charged) for r in rows)
    assert charged == [("cloud", "qwen3.5:cloud", 2)] * 2 + [("local", LOCAL, 1)] * 4
    assert stack.balance(account.account_id) == 100 - 8 == stack.ledger_sum(account.account_id)


def test_cloud_budget_cap_stops_cloud_and_failover(stack: Stack) -> None:
    today = budget_day(datetime.now(UTC), "Asia/Kuwait")
    with redis.Redis.from_url(stack.redis_url) as client:
        used = int(client.get(keys.cloud_budget(today.day)) or 0)
    with stack.extra_api("api-capped", CLOUD_DAILY_CAP=str(used + 2)) as url:
        account = unlimited(stack)
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            responses = list(
                pool.map(lambda _: post(url, account.key, body("hi", "qwen3.5:cloud")), range(6))
            )
        assert sorted(r.status_code for r in responses) == [200, 200, 503, 503, 503, 503]
        for refused in (r for r in responses if r.status_code == 503):
            assert refused.json()["error"]["code"] == "cloud_budget_exhausted"
            assert int(refused.headers["retry-after"]) == pytest_approx(today.seconds_left)
            assert refused.headers["x-should-retry"] == "false"
        # With the budget spent, a backed-up local request waits locally instead.
        busy = unlimited(stack)
        with saturated(stack, busy.key):
            for i in range(4):
                stack_waiter = concurrent.futures.ThreadPoolExecutor(max_workers=1)
                stack_waiter.submit(post, url, account.key, body("wait"))
                stack_waiter.shutdown(wait=False)
                wait_backlog(stack, i + 1)
        rows = stack.wait_usage(account.account_id, 6)
        assert sorted(r.pool for r in rows) == [
            "cloud",
            "cloud",
            "local",
            "local",
            "local",
            "local",
        ]
        with stack.session() as session:
            kinds = session.scalars(
                select(AdminAlert.kind).where(AdminAlert.day == today.day)
            ).all()
        assert "cloud_budget_100" in kinds
        assert stack.balance(account.account_id) == stack.ledger_sum(account.account_id)


def pytest_approx(seconds: int) -> object:
    import pytest

    return pytest.approx(seconds, abs=5)


def test_a_plan_without_cloud_models_never_overflows(stack: Stack) -> None:
    busy = unlimited(stack)
    account = stack.new_account(plan="basic", credits=100)
    with (
        concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool,
        saturated(stack, busy.key),
    ):
        waiting = [pool.submit(post, stack.api_url, account.key, body("wait")) for _ in range(6)]
        wait_backlog(stack, 6)
    assert {f.result().headers["x-resayil-served-by"] for f in waiting} == {"local"}
    rows = stack.wait_usage(account.account_id, 6)
    assert {(r.pool, r.credits_charged) for r in rows} == {("local", 1)}
    assert stack.balance(account.account_id) == 94 == stack.ledger_sum(account.account_id)
