"""The load generator: closed-loop streaming clients, measured identically per target.

A `Target` knows how to build its request and which lines carry content; everything
else (the client, the timing, the reading of the body line by line) is shared, so the
gateway and the simulator pay the same client-side costs. The client is `LeanClient`
by default (see `bench.lean_http` for why), httpx on request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bench.lean_http import HTTPFailure, LeanHTTP

MODEL = "llama3.2:3b"
ANSWER_TOKENS = 32  # the simulator is configured for this; each token is one content chunk
MESSAGES = [{"role": "user", "content": "hello there"}]
TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0

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


class LoadClient(Protocol):
    """Sends one streaming request to a target and measures it (`Sample`), or raises
    `RequestFailed`."""

    name: str

    async def request(self, target: Target) -> Sample: ...

    async def aclose(self) -> None: ...


class RequestFailed(Exception):
    """A request that got no answer of 32 content chunks: a non-200, a broken or short
    stream, no connection, a timeout."""


class _Reading:
    """The measuring side, shared by every client: the body line by line, each line
    judged by the target (which JSON-parses it), and the time of the first content."""

    def __init__(self, target: Target, started: float) -> None:
        self.target = target
        self.started = started
        self.first: float | None = None
        self.chunks = 0

    def line(self, line: str) -> None:
        if self.target.is_content(line):
            self.chunks += 1
            if self.first is None:
                self.first = time.perf_counter()

    def sample(self) -> Sample:
        ended = time.perf_counter()
        if self.first is None or self.chunks != ANSWER_TOKENS:
            raise RequestFailed(f"expected {ANSWER_TOKENS} content chunks, got {self.chunks}")
        return Sample(self.first - self.started, ended - self.started, self.chunks)


class LeanClient:
    """The default: `LeanHTTP` (an asyncio protocol and httptools' parser)."""

    name = "lean"

    def __init__(self) -> None:
        self._http = LeanHTTP(timeout_s=TIMEOUT_S, connect_timeout_s=CONNECT_TIMEOUT_S)

    async def request(self, target: Target) -> Sample:
        reading = _Reading(target, time.perf_counter())
        try:
            async with self._http.post(target.url, target.body, target.headers) as (status, body):
                if status != 200:
                    text = b"".join([part async for part in body]).decode(errors="replace")
                    raise RequestFailed(f"HTTP {status}: {text[:200]}")
                rest = b""
                async for part in body:
                    *lines, rest = (rest + part).split(b"\n")
                    for line in lines:
                        reading.line(line.decode().removesuffix("\r"))
                if rest:
                    reading.line(rest.decode().removesuffix("\r"))
        except (HTTPFailure, ValueError) as error:
            raise RequestFailed(f"{type(error).__name__}: {error}") from error
        return reading.sample()

    async def aclose(self) -> None:
        await self._http.aclose()


class HttpxClient:
    """httpx's async client (`--client httpx`), the bench's client before `LeanClient`."""

    name = "httpx"

    def __init__(self, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        timeout = httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        self._client = httpx.AsyncClient(timeout=timeout, limits=limits)

    async def request(self, target: Target) -> Sample:
        reading = _Reading(target, time.perf_counter())
        try:
            async with self._client.stream(
                "POST", target.url, json=target.body, headers=target.headers
            ) as response:
                if response.status_code != httpx.codes.OK:
                    text = (await response.aread()).decode(errors="replace")
                    raise RequestFailed(f"HTTP {response.status_code}: {text[:200]}")
                async for line in response.aiter_lines():
                    reading.line(line)
        except (httpx.HTTPError, ValueError) as error:
            raise RequestFailed(f"{type(error).__name__}: {error}") from error
        return reading.sample()

    async def aclose(self) -> None:
        await self._client.aclose()


CLIENTS = ("lean", "httpx")


def make_client(concurrency: int, kind: str = "lean") -> LoadClient:
    """A load client for `concurrency` requests in flight at a time."""
    if kind == "httpx":
        return HttpxClient(concurrency)
    if kind == "lean":
        return LeanClient()
    raise ValueError(f"unknown client {kind!r}: one of {', '.join(CLIENTS)}")


async def run_level(
    client: LoadClient, target: Target, *, concurrency: int, requests: int
) -> LevelRun:
    """`requests` requests, `concurrency` at a time (each worker starts its next at once)."""
    run = LevelRun(target.name, concurrency, 0.0)
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                run.samples.append(await client.request(target))
            except RequestFailed as error:
                run.errors.append(str(error))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.wall_s = time.perf_counter() - started
    return run
