"""The load generator: closed-loop streaming clients, measured identically per target.

A `Target` knows how to build its request and which lines carry content; everything
else (the client, the timing, the reading of the body line by line) is shared, so the
gateway and the simulator pay the same client-side costs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

MODEL = "llama3.2:3b"
ANSWER_TOKENS = 32  # the simulator is configured for this; each token is one content chunk
MESSAGES = [{"role": "user", "content": "hello there"}]
TIMEOUT = httpx.Timeout(30.0, connect=5.0)

IsContent = Callable[[str], bool]


def ndjson_content(line: str) -> bool:
    """An Ollama `/api/chat` line with message content."""
    if not line:
        return False
    message = json.loads(line).get("message") or {}
    return bool(message.get("content"))


def sse_content(line: str) -> bool:
    """An OpenAI SSE `data:` line whose delta has content."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return False
    choices = json.loads(line[6:]).get("choices") or []
    return bool(choices and (choices[0].get("delta") or {}).get("content"))


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str]
    is_content: IsContent

    @classmethod
    def direct(cls, sim_url: str) -> Target:
        body = {"model": MODEL, "messages": MESSAGES, "stream": True}
        return cls("direct", f"{sim_url}/api/chat", body, {}, ndjson_content)

    @classmethod
    def gateway(cls, api_url: str, key: str) -> Target:
        body = {"model": MODEL, "messages": MESSAGES, "stream": True}
        headers = {"Authorization": f"Bearer {key}"}
        return cls("gateway", f"{api_url}/v1/chat/completions", body, headers, sse_content)


@dataclass
class Sample:
    ttft_s: float
    total_s: float
    chunks: int


@dataclass
class LevelRun:
    target: str
    concurrency: int
    wall_s: float
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return len(self.samples) + len(self.errors)


async def one_request(client: httpx.AsyncClient, target: Target) -> Sample:
    started = time.perf_counter()
    first: float | None = None
    chunks = 0
    async with client.stream("POST", target.url, json=target.body, headers=target.headers) as r:
        if r.status_code != httpx.codes.OK:
            body = (await r.aread()).decode(errors="replace")
            raise RuntimeError(f"HTTP {r.status_code}: {body[:200]}")
        async for line in r.aiter_lines():
            if target.is_content(line):
                chunks += 1
                if first is None:
                    first = time.perf_counter()
    ended = time.perf_counter()
    if first is None or chunks != ANSWER_TOKENS:
        raise RuntimeError(f"expected {ANSWER_TOKENS} content chunks, got {chunks}")
    return Sample(first - started, ended - started, chunks)


def make_client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(timeout=TIMEOUT, limits=limits)


async def run_level(
    client: httpx.AsyncClient, target: Target, *, concurrency: int, requests: int
) -> LevelRun:
    """`requests` requests, `concurrency` at a time (each worker starts its next at once)."""
    run = LevelRun(target.name, concurrency, 0.0)
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                run.samples.append(await one_request(client, target))
            except (httpx.HTTPError, RuntimeError, ValueError) as error:
                run.errors.append(f"{type(error).__name__}: {error}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.wall_s = time.perf_counter() - started
    return run
