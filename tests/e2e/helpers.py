"""Helpers shared by the end-to-end tests: request bodies, saturating the local pool,
polling, and accounts without a per-minute limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from sqlalchemy import update

from broker import keys
from broker.budget import budget_day
from schema.models import Account
from tests.stack import Account_, Process, Stack

LOCAL = "llama3.2:3b"
CLOUD = "qwen3.5:cloud"
SLOW = "[[sim:tokens=2000]] [[sim:delay_ms=5]]"


def body(text: str, model: str = LOCAL, stream: bool = False) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}


def post(url: str, key: str, payload: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=payload,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=60,
    )


@contextmanager
def saturated(stack: Stack, key: str, slots: int = 4) -> Iterator[None]:
    """Keep every local slot busy with slow streams until the block ends."""
    with ExitStack() as streams:
        client = streams.enter_context(httpx.Client(timeout=60))
        # A dropped line iterator closes its response: keep them alive with the streams.
        readers: list[Iterator[str]] = []
        for _ in range(slots):
            response = streams.enter_context(
                client.stream(
                    "POST",
                    f"{stack.api_url}/v1/chat/completions",
                    json=body(SLOW, stream=True),
                    headers={"Authorization": f"Bearer {key}", "x-resayil-failover": "off"},
                )
            )
            readers.append(response.iter_lines())
            next(readers[-1])
        deadline = time.monotonic() + 5
        while stack.sim_stats()["active"] < slots and time.monotonic() < deadline:
            time.sleep(0.02)
        yield


def used_today(stack: Stack) -> int:
    """Today's count of the cloud budget (the day in Asia/Kuwait), as Redis holds it."""
    day = budget_day(datetime.now(UTC), "Asia/Kuwait").day
    with redis.Redis.from_url(stack.redis_url) as client:
        return int(client.get(keys.cloud_budget(day)) or 0)


def local_backlog(stack: Stack) -> int:
    with redis.Redis.from_url(stack.redis_url) as client:
        return int(client.zcard(keys.queue("local")))


def wait_backlog(stack: Stack, count: int) -> None:
    deadline = time.monotonic() + 5
    while local_backlog(stack) < count:
        assert time.monotonic() < deadline, f"backlog stayed at {local_backlog(stack)}"
        time.sleep(0.01)


def unlimit(stack: Stack, account: Account_) -> Account_:
    """No per-minute limit (`rpm_override=0`): these tests send many requests on purpose."""
    with stack.session() as session, session.begin():
        session.execute(
            update(Account).where(Account.id == account.account_id).values(rpm_override=0)
        )
    return account


def unlimited(stack: Stack, credits: int = 100, plan: str = "pro") -> Account_:
    return unlimit(stack, stack.new_account(plan=plan, credits=credits))


def user(content: str) -> list[Any]:
    return [{"role": "user", "content": content}]


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def live_dispatchers(stack: Stack) -> list[Process]:
    return [d for d in stack.dispatchers if d.popen.poll() is None]
