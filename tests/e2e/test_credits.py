"""Credits under concurrency and across outcomes: balance == sum(ledger), never below zero."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from schema import ledger
from schema.models import CreditEntry
from tests.e2e.helpers import CLOUD, LOCAL, unlimit, wait_until
from tests.stack import Stack

ClientFor = Callable[..., openai.OpenAI]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


def ledger_entries(stack: Stack, account_id: int) -> list[CreditEntry]:
    with stack.session() as session:
        return list(
            session.scalars(
                select(CreditEntry)
                .where(CreditEntry.account_id == account_id)
                .order_by(CreditEntry.id)
            )
        )


def test_concurrent_requests_admit_only_what_the_balance_covers(
    stack: Stack, client_for: ClientFor
) -> None:
    account = unlimit(stack, stack.new_account(plan="pro", credits=3))
    client = client_for(account.key, timeout=60)
    start = threading.Barrier(50)

    def call(_: int) -> str | openai.APIStatusError:
        start.wait()
        try:
            completion = client.chat.completions.create(model=LOCAL, messages=HELLO)
        except openai.APIStatusError as error:
            return error
        return completion.choices[0].finish_reason

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(call, range(50)))
    successes = [r for r in results if isinstance(r, str)]
    refusals = [r for r in results if isinstance(r, openai.APIStatusError)]
    assert successes == ["stop"] * 3
    assert Counter((r.status_code, r.code) for r in refusals) == {(402, "insufficient_credits"): 47}

    rows = stack.wait_usage(account.account_id, 3)
    assert [(r.status, r.credits_charged) for r in rows] == [("ok", 1)] * 3
    assert stack.balance(account.account_id) == 0 == stack.ledger_sum(account.account_id)
    entries = ledger_entries(stack, account.account_id)
    assert Counter(e.kind for e in entries)["reserve"] == 3
    # Each served request cost exactly its price. One reserved at the cloud price (its
    # local backlog was near the failover threshold) got the difference back when it
    # was served locally after all.
    net: Counter[str] = Counter()
    for entry in entries:
        if entry.request_id is not None:
            net[entry.request_id] += entry.amount
    assert net == {row.request_id: -1 for row in rows}
    assert all(e.balance_after >= 0 for e in entries)


def test_cloud_model_costs_two_credits(stack: Stack, client_for: ClientFor) -> None:
    account = stack.new_account(plan="pro", credits=10)
    raw = client_for(account.key).chat.completions.with_raw_response.create(
        model=CLOUD, messages=HELLO
    )
    completion = raw.parse()
    assert completion.model == CLOUD
    assert raw.headers["x-resayil-served-by"] == "cloud"
    assert raw.headers["x-resayil-model"] == CLOUD
    rows = stack.wait_usage(account.account_id, 1)
    assert [(r.pool, r.model_served, r.credits_charged, r.status) for r in rows] == [
        ("cloud", CLOUD, 2, "ok")
    ]
    assert stack.balance(account.account_id) == 8 == stack.ledger_sum(account.account_id)
    entries = ledger_entries(stack, account.account_id)
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        ("grant", 10, 10),
        ("reserve", -2, 8),
    ]


def _say(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_books_balance_after_mixed_outcomes(stack: Stack, client_for: ClientFor) -> None:
    account = unlimit(stack, stack.new_account(plan="pro", credits=6))
    client = client_for(account.key)
    outcomes: list[str] = []

    def attempt(model: str, text: str, *, stream: bool = False) -> None:
        try:
            if stream:
                for _ in client.chat.completions.create(
                    model=model, messages=_say(text), stream=True
                ):
                    pass
            else:
                client.chat.completions.create(model=model, messages=_say(text))
        except openai.APIStatusError as error:
            outcomes.append(f"{error.status_code}:{error.code}")
        except openai.APIError as error:
            outcomes.append(f"stream:{error.code}")
        else:
            outcomes.append("ok")

    attempt(LOCAL, "one")  # -1
    attempt(CLOUD, "two")  # -2
    attempt(LOCAL, "x [[sim:error=503]]")  # reserved, refunded
    attempt(CLOUD, "x [[sim:error=500]]")  # reserved, refunded
    attempt(LOCAL, "x [[sim:error=midstream]]", stream=True)
    attempt(LOCAL, "x [[sim:error=truncate]]")
    attempt("glm-4.7-flash", "hidden")  # never admitted
    attempt(LOCAL, "three", stream=True)  # -1
    # Refunds are written by the settler, asynchronously: let the seven settle first.
    assert len(stack.wait_usage(account.account_id, 7)) == 7
    attempt(CLOUD, "four")  # needs 2, has at most 2
    attempt(CLOUD, "five")  # 402 by now
    bad = httpx.post(
        f"{stack.api_url}/v1/chat/completions",
        json={"model": LOCAL, "messages": []},
        headers={"Authorization": f"Bearer {account.key}"},
        timeout=10,
    )
    assert bad.status_code == 400
    assert outcomes[:8] == [
        "ok",
        "ok",
        "503:upstream_busy",
        "502:upstream_error",
        "stream:upstream_error",
        "502:upstream_truncated",
        "404:model_not_found",
        "ok",
    ]
    assert outcomes[-1] == "402:insufficient_credits"

    admitted = sum(1 for outcome in outcomes if not outcome.startswith(("402", "404")))
    assert admitted == 8
    rows = stack.wait_usage(account.account_id, admitted)
    assert len(rows) == admitted
    charged = sum(r.credits_charged for r in rows)
    assert stack.balance(account.account_id) == 6 - charged == stack.ledger_sum(account.account_id)
    assert stack.balance(account.account_id) >= 0
    entries = ledger_entries(stack, account.account_id)
    reserves = {e.request_id: -e.amount for e in entries if e.kind == "reserve"}
    refunds = {e.request_id: e.amount for e in entries if e.kind == "refund"}
    assert set(reserves) == {r.request_id for r in rows}
    for row in rows:
        assert reserves[row.request_id] - refunds.get(row.request_id, 0) == row.credits_charged
        if row.status == "ok" or row.error_code == "upstream_busy":
            assert row.credits_charged == (reserves[row.request_id] if row.status == "ok" else 0)
    for entry, after in zip(entries, _running(entries), strict=True):
        assert entry.balance_after == after


def _running(entries: list[CreditEntry]) -> list[int]:
    total, out = 0, []
    for entry in entries:
        total += entry.amount
        out.append(total)
    return out


def test_an_account_refused_for_credits_starts_no_upstream_work_until_it_can_pay(
    stack: Stack, client_for: ClientFor
) -> None:
    account = unlimit(stack, stack.new_account(plan="pro", credits=0))
    client = client_for(account.key)

    def refused() -> int:
        with pytest.raises(openai.APIStatusError) as error:
            client.chat.completions.create(model=LOCAL, messages=HELLO)
        return error.value.status_code

    # The first may start upstream before its reservation fails (it is stopped unseen).
    assert refused() == 402
    wait_until(lambda: stack.sim_stats()["active"] == 0, 15)
    started = stack.sim_stats()["requests"]
    # From then on this account is reserved first: refused before anything starts.
    assert [refused() for _ in range(5)] == [402] * 5
    assert stack.sim_stats()["requests"] == started
    with stack.session() as session, session.begin():
        ledger.grant(session, account_id=account.account_id, amount=2, kind="grant", reason="t")
    completion = client.chat.completions.create(model=LOCAL, messages=HELLO)
    assert completion.choices[0].finish_reason == "stop"
    assert stack.sim_stats()["requests"] == started + 1
    assert stack.balance(account.account_id) == 1 == stack.ledger_sum(account.account_id)
