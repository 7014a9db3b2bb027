"""A dispatcher that dies loses no job: re-run if no token went out, else an error event
and a refund (DESIGN request path, step 7). A SIGTERM drains running jobs first."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.e2e.helpers import live_dispatchers, user, wait_until
from tests.stack import Process, Stack

ClientFor = Callable[..., openai.OpenAI]
MODEL = "llama3.2:3b"


@pytest.fixture
def dispatcher(stack: Stack) -> Iterator[Process]:
    """The one live dispatcher; afterwards the stack again has exactly one."""
    wait_until(lambda: stack.sim_stats()["active"] == 0, 15)
    stack.sim_reset()
    [current] = live_dispatchers(stack)
    try:
        yield current
    finally:
        alive = live_dispatchers(stack)
        for extra in alive[1:]:
            extra.stop()
        if not alive:
            stack.start_dispatcher()


def test_job_killed_before_any_token_is_rerun(
    stack: Stack, dispatcher: Process, client_for: ClientFor
) -> None:
    account = stack.new_account(credits=10)
    client = client_for(account.key, timeout=60)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            client.chat.completions.create,
            model=MODEL,
            messages=user("slow to start [[sim:first_delay_ms=3000]]"),
        )
        wait_until(lambda: stack.sim_stats()["active"] == 1, 10)
        dispatcher.stop(signal.SIGKILL)
        stack.start_dispatcher()
        completion = answer.result(timeout=60)
    assert (completion.choices[0].message.content or "").split() == [f"tok{i}" for i in range(32)]
    assert completion.choices[0].finish_reason == "stop"
    stats = stack.sim_stats()
    assert (stats["requests"], stats["cancelled"], stats["completed"]) == (2, 1, 1)
    stack.wait_usage(account.account_id, 1)
    time.sleep(0.3)  # a second settlement would be written by now
    rows = stack.usage(account.account_id)
    assert [(r.status, r.credits_charged, r.completion_tokens) for r in rows] == [("ok", 1, 32)]
    assert stack.balance(account.account_id) == 9 == stack.ledger_sum(account.account_id)


def test_job_killed_after_tokens_went_out_ends_in_an_error_and_a_refund(
    stack: Stack, dispatcher: Process, client_for: ClientFor
) -> None:
    account = stack.new_account(credits=10)
    stream = client_for(account.key, timeout=60).chat.completions.create(
        model=MODEL,
        messages=user("slow [[sim:tokens=400]] [[sim:delay_ms=20]]"),
        stream=True,
    )
    received: list[str] = []
    try:
        chunks = iter(stream)
        while len(received) < 3:
            chunk = next(chunks)
            received += [c.delta.content for c in chunk.choices if c.delta.content]
        dispatcher.stop(signal.SIGKILL)
        stack.start_dispatcher()
        with pytest.raises(openai.APIError) as raised:
            for chunk in chunks:
                received += [c.delta.content for c in chunk.choices if c.delta.content]
    finally:
        stream.close()
    assert raised.value.code == "dispatcher_lost"
    assert "".join(received).split() == [f"tok{i}" for i in range(len(received))]
    assert len(received) < 400
    rows = stack.wait_usage(account.account_id, 1)
    assert [(r.status, r.error_code, r.credits_charged) for r in rows] == [
        ("error", "dispatcher_lost", 0)
    ]
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)
    assert stack.sim_stats()["requests"] == 1  # not re-run: output had gone out


def test_non_stream_job_killed_after_tokens_went_out_is_a_clear_error(
    stack: Stack, dispatcher: Process, client_for: ClientFor
) -> None:
    account = stack.new_account(credits=10)
    client = client_for(account.key, timeout=60)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            client.chat.completions.create,
            model=MODEL,
            messages=user("slow [[sim:tokens=400]] [[sim:delay_ms=20]]"),
        )
        wait_until(lambda: stack.sim_stats()["active"] == 1, 10)
        time.sleep(0.3)  # some tokens reach the api
        dispatcher.stop(signal.SIGKILL)
        stack.start_dispatcher()
        with pytest.raises(openai.APIStatusError) as raised:
            answer.result(timeout=30)
    assert (raised.value.status_code, raised.value.code) == (502, "dispatcher_lost")
    rows = stack.wait_usage(account.account_id, 1)
    assert [(r.status, r.credits_charged) for r in rows] == [("error", 0)]
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)
    assert stack.sim_stats()["requests"] == 1


def test_sigterm_drains_the_running_job_and_claims_no_more(
    stack: Stack, dispatcher: Process, client_for: ClientFor
) -> None:
    account = stack.new_account(credits=10)
    client = client_for(account.key, timeout=60)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(
            client.chat.completions.create,
            model=MODEL,
            messages=user("drain me [[sim:tokens=40]] [[sim:delay_ms=50]]"),
        )
        wait_until(lambda: stack.sim_stats()["active"] == 1, 10)
        dispatcher.popen.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the dispatcher has stopped claiming
        waiting = pool.submit(
            client.chat.completions.create, model=MODEL, messages=user("after the drain")
        )
        assert dispatcher.popen.wait(timeout=15) == 0
        # It exited only after the job had finished and been settled.
        drained = running.result(timeout=5)
        assert drained.usage is not None and drained.usage.completion_tokens == 40
        rows = stack.usage(account.account_id)
        assert [(r.status, r.completion_tokens) for r in rows] == [("ok", 40)]
        assert not waiting.done()
        assert stack.sim_stats()["requests"] == 1
        stack.start_dispatcher()
        assert waiting.result(timeout=30).choices[0].finish_reason == "stop"
    rows = stack.wait_usage(account.account_id, 2)
    assert [(r.status, r.credits_charged) for r in rows] == [("ok", 1), ("ok", 1)]
    assert stack.balance(account.account_id) == 8 == stack.ledger_sum(account.account_id)
