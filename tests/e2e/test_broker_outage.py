"""A Redis that stops answering: the api says so promptly, and answers a chat request
with a 503 in bounded time instead of leaving it open."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import body, post, unlimited
from tests.services import RedisServer
from tests.stack import Stack


@pytest.fixture
def api_on_own_redis(stack: Stack, module_redis: RedisServer) -> Iterator[str]:
    """An api process on the system's database but a Redis of this module's own, which
    the tests may stop without touching the rest of the system."""
    with stack.extra_api("api-own-redis", REDIS_URL=module_redis.url) as url:
        yield url


def test_a_stalled_redis_is_reported_and_refused_in_bounded_time(
    stack: Stack, module_redis: RedisServer, api_on_own_redis: str
) -> None:
    url = api_on_own_redis
    key = unlimited(stack).key
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert module_redis.pid is not None
    os.kill(module_redis.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        health = httpx.get(f"{url}/healthz", timeout=30)
        health_s = time.monotonic() - started
        started = time.monotonic()
        chat = post(url, key, body("hello"))
        chat_s = time.monotonic() - started
    finally:
        os.kill(module_redis.pid, signal.SIGCONT)
    assert health.status_code == 503
    assert health.json() == {"status": "degraded", "redis": "down"}
    assert health_s < 5  # the probe's own bound (2 s), not the commands' (10 s)
    assert chat.status_code == 503
    error = chat.json()["error"]
    assert error["type"] == "api_error" and error["code"] in {
        "queue_unavailable",
        "service_unavailable",
    }
    assert chat.headers["retry-after"]
    assert chat_s < 25  # one or two commands' 10 s, not the client's own 60 s timeout
    deadline = time.monotonic() + 15
    while httpx.get(f"{url}/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the api did not recover once Redis answered"
        time.sleep(0.2)
