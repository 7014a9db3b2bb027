"""A PostgreSQL that stops answering: the api says so promptly, answers a chat request
with a 503 in bounded time instead of leaving it open, and charges nothing for it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from schema.bounded import ANSWER_TIMEOUT_S
from schema.models import Account, CreditEntry, UsageRecord
from tests.e2e.helpers import CLOUD, LOCAL, body, post, used_today
from tests.services import PostgresServer
from tests.stack import Stack


def books(stack: Stack, account_id: int) -> tuple[int, int]:
    with stack.session() as session:
        balance = session.get_one(Account, account_id).credit_balance
        total = session.scalar(
            select(func.sum(CreditEntry.amount)).where(CreditEntry.account_id == account_id)
        )
    return balance, int(total or 0)


def usage(stack: Stack, account_id: int) -> list[tuple[str, str | None, int]]:
    with stack.session() as session:
        rows = session.execute(
            select(UsageRecord.status, UsageRecord.error_code, UsageRecord.credits_charged)
            .where(UsageRecord.account_id == account_id)
            .order_by(UsageRecord.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_stalled_database_is_reported_and_refused_in_bounded_time_and_not_charged(
    stack: Stack, postgres_server: PostgresServer
) -> None:
    if not stack.database_url.startswith("postgresql") or postgres_server.external:
        pytest.skip("stalls a PostgreSQL server of the test session's own")
    account = stack.new_account(credits=10)
    newcomer = stack.new_account(credits=10)  # its key is looked up on its first request
    assert post(stack.api_url, account.key, body("hello")).status_code == 200  # key cached
    # The day's cloud budget counter is in Redis, taken without the database.
    assert post(stack.api_url, account.key, body("hello", CLOUD)).status_code == 200
    assert httpx.get(f"{stack.api_url}/healthz").json() == {"status": "ok"}

    def timed(key: str, model: str = LOCAL, after_s: float = 0) -> tuple[httpx.Response, float]:
        time.sleep(after_s)
        started = time.monotonic()
        return post(stack.api_url, key, body("hello", model)), time.monotonic() - started

    budget_before = used_today(stack)
    with postgres_server.stalled(), ThreadPoolExecutor(3) as pool:
        # The chat requests first, while their keys are still in the cache: the local one's
        # reservation goes out on the connection the first request left idle, and gets no
        # answer; the cloud one, a moment later, finds no connection free.
        local = pool.submit(timed, account.key)
        lookup_ = pool.submit(timed, newcomer.key)
        cloud_ = pool.submit(timed, account.key, CLOUD, 0.5)
        (chat, chat_s), (lookup, lookup_s), (cloud, _) = (
            local.result(),
            lookup_.result(),
            cloud_.result(),
        )
        started = time.monotonic()
        health = httpx.get(f"{stack.api_url}/healthz", timeout=30)
        health_s = time.monotonic() - started
    assert health.status_code == 503
    assert health.json() == {"status": "degraded", "database": "down"}
    assert health_s < 5  # the probe's own bound (2 s)
    assert chat.status_code == 503
    error = chat.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "database_unavailable")
    assert "not charged" in error["message"]
    assert chat.headers["retry-after"]
    assert ANSWER_TIMEOUT_S <= chat_s < ANSWER_TIMEOUT_S + 10
    # A cloud request takes a unit of the day's cloud budget before its credits: refused,
    # it gives the unit back.
    assert cloud.status_code == 503
    assert cloud.json()["error"]["code"] == "database_unavailable"
    assert used_today(stack) == budget_before
    # A key not cached yet: its lookup goes unanswered, and is a 503 as well.
    assert lookup.status_code == 503
    assert lookup.json()["error"]["code"] == "database_unavailable"
    assert ANSWER_TIMEOUT_S <= lookup_s < ANSWER_TIMEOUT_S + 10
    # Once the database answers, the refused requests are settled: whether or not their
    # reservations went through in the end, the account keeps its credits. (The local
    # one's went out unanswered, so it has a usage row; the cloud one's may not have.)
    deadline = time.monotonic() + 20
    while len(usage(stack, account.account_id)) < 3 or books(stack, account.account_id) != (7, 7):
        assert time.monotonic() < deadline, "the refused requests were never settled"
        time.sleep(0.1)
    served, refused = usage(stack, account.account_id)[:2], usage(stack, account.account_id)[2:]
    assert served == [("ok", None, 1), ("ok", None, 2)]
    assert refused and set(refused) == {("error", "database_unavailable", 0)}
    assert httpx.get(f"{stack.api_url}/healthz", timeout=5).json() == {"status": "ok"}
    assert post(stack.api_url, account.key, body("hello again")).status_code == 200
    assert books(stack, account.account_id) == (6, 6)
    assert post(stack.api_url, newcomer.key, body("hello")).status_code == 200
    assert books(stack, newcomer.account_id) == (9, 9)
