"""The overload scenario: open-loop arrivals at a multiple of local capacity, mixed tiers.

Local capacity is known by construction: `local_slots` concurrent generations of
`tokens` x `token_delay_ms` each. Requests arrive as a Poisson process at `factor`
times that rate for `duration_s`, each one sent at its scheduled moment whatever the
earlier ones are doing (open loop: a slow gateway does not slow the offered load down,
as it would with a fixed number of clients). Each arrival picks a tier by the `mix`
weights, an account of that tier and streaming or not, all from a seeded RNG, so two
runs offer the same sequence. Failover stays on, as in production.

Every request ends as exactly one of: a complete answer (`ok`), a clear error (a non-200
JSON body in OpenAI's error shape, or an SSE `data: {"error": ...}` line), or lost
(anything else: a stream that stops short, a transport error, no answer in time).
After the last answer the books are read: the usage rows, the accounts' ledgers and the
cloud budget counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import redis
import uvloop
from redis.asyncio import Redis
from sqlalchemy import select

from bench.load import ANSWER_TOKENS, MESSAGES, MODEL
from bench.system import running_stack, unlimit_account
from broker import keys
from broker.budget import budget_day
from portal.config import PortalSettings
from schema.models import AdminAlert, Price, UsageRecord
from tests.stack import Stack

TIERS = ("basic", "pro", "enterprise")
CREDITS = 1_000_000
SETTLE_TIMEOUT_S = 60.0
SAMPLE_EVERY_S = 0.25
CONNECT_TIMEOUT_S = 10.0

Kind = Literal["ok", "error", "lost"]


@dataclass(frozen=True)
class OverloadConfig:
    local_slots: int = 4
    cloud_slots: int = 8
    # 10 ms x 32 tokens: a local job takes 320 ms, local capacity is 12.5 req/s and the
    # offered load 37.5 req/s. At 5 ms (75 req/s) the gateway's own CPU on 2 shared cores
    # starts to show in the latencies, blurring the queueing this scenario is about.
    token_delay_ms: float = 10.0
    factor: float = 3.0
    duration_s: float = 20.0
    mix: tuple[tuple[str, float], ...] = (("basic", 0.5), ("pro", 0.3), ("enterprise", 0.2))
    accounts_per_tier: int = 4
    cloud_cap: int = 10_000
    stream_share: float = 0.5
    seed: int = 1
    # After the last arrival, answers still missing this long are lost. The product
    # promises an answer or a queue_timeout within MAX_QUEUE_WAIT_S; 30 s more.
    drain_margin_s: float = 30.0
    tokens: int = ANSWER_TOKENS
    extra_env: tuple[tuple[str, str], ...] = ()  # more settings for the api and dispatcher

    @property
    def job_s(self) -> float:
        """A local generation's length by construction (the simulator's token delays)."""
        return self.tokens * self.token_delay_ms / 1000

    @property
    def capacity_rps(self) -> float:
        return self.local_slots / self.job_s

    @property
    def offered_rps(self) -> float:
        return self.factor * self.capacity_rps

    @property
    def drain_s(self) -> float:
        return float(product_settings(self)["MAX_QUEUE_WAIT_S"]) + self.drain_margin_s

    def env(self) -> dict[str, str]:
        """Settings of the api and dispatcher on top of the product defaults."""
        return {
            "CLOUD_SLOTS": str(self.cloud_slots),
            "CLOUD_DAILY_CAP": str(self.cloud_cap),
            **dict(self.extra_env),
        }


@dataclass(frozen=True)
class Arrival:
    index: int
    at_s: float  # offset from the start of the load
    tier: str
    account: int  # index among the tier's accounts
    stream: bool


def schedule(config: OverloadConfig) -> list[Arrival]:
    """The offered load: Poisson arrivals, tier by weight, account and mode at random."""
    rng = random.Random(config.seed)
    tiers = [tier for tier, _ in config.mix]
    weights = [weight for _, weight in config.mix]
    arrivals: list[Arrival] = []
    at = 0.0
    while True:
        at += rng.expovariate(config.offered_rps)
        if at >= config.duration_s:
            return arrivals
        tier = rng.choices(tiers, weights)[0]
        account = rng.randrange(config.accounts_per_tier)
        stream = rng.random() < config.stream_share
        arrivals.append(Arrival(len(arrivals), at, tier, account, stream))


@dataclass
class Outcome:
    """What the client saw of one request; filled in as the answer arrives."""

    arrival: Arrival
    lag_s: float = math.nan  # sent this long after its scheduled moment
    kind: Kind = "lost"
    detail: str = "no answer before the deadline"
    message: str | None = None  # an error's message
    status: int | None = None
    request_id: str | None = None
    served_by: str | None = None  # x-resayil-served-by
    model: str | None = None  # the answer's `model` field
    header_wait_ms: int | None = None  # x-resayil-queue-wait-ms (non-streaming only)
    ttft_s: float | None = None  # streams: first content chunk
    total_s: float | None = None
    done_at_s: float | None = None  # offset from the start of the load

    def label(self) -> str:
        """How the table counts it: `200`, `503 queue_timeout`, `lost: ...`."""
        if self.kind == "ok":
            return str(self.status)
        if self.kind == "error":
            return f"{self.status} {self.detail}"
        return "lost"


@dataclass(frozen=True)
class Row:
    """A usage row: the books' view of one admitted request."""

    request_id: str
    account_id: int
    pool: str
    model_served: str
    status: str
    error_code: str | None
    queue_wait_ms: int
    credits_charged: int
    duration_ms: int


@dataclass(frozen=True)
class AccountBooks:
    account_id: int
    tier: str
    initial: int
    balance: int
    ledger_sum: int
    charged: int  # sum of its usage rows' credits_charged

    @property
    def balanced(self) -> bool:
        return self.balance == self.ledger_sum == self.initial - self.charged


@dataclass(frozen=True)
class Sample:
    at_s: float
    local_queued: int
    local_running: int
    cloud_queued: int
    cloud_running: int


@dataclass
class OverloadRun:
    config: OverloadConfig
    settings: dict[str, str]
    tier_of: dict[int, str]  # account id -> tier
    warmup: list[Outcome]
    outcomes: list[Outcome]
    rows: list[Row]
    books: list[AccountBooks]
    prices: dict[str, int]
    samples: list[Sample]
    cloud_budget_used: int
    alerts: list[str]  # admin alerts raised (the cloud budget's 80% and 100%)
    clocks_ahead_s: dict[str, list[float]]  # fair-share clocks when the arrivals stopped
    settle_wait_s: float
    load_before: float
    load_after: float = math.nan
    wall_s: float = 0.0  # from the first arrival to the last answer
    errors: list[str] = field(default_factory=list)


# --- the client --------------------------------------------------------------------


def _error_detail(raw: bytes) -> tuple[str, str] | None:
    """The code and message of an OpenAI-shaped error body, None if it is not one."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict) or not error.get("message"):
        return None
    return str(error.get("code") or error.get("type") or "error"), str(error["message"])


async def _read_stream(response: httpx.Response, outcome: Outcome, started: float) -> None:
    chunks = 0
    done = False
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue  # blank separators and `: queued` heartbeats
        if line == "data: [DONE]":
            done = True
            continue
        payload = json.loads(line[6:])
        if "error" in payload:
            outcome.kind = "error"
            outcome.detail = str(payload["error"].get("code") or "error")
            outcome.message = str(payload["error"].get("message"))
            return
        outcome.model = payload.get("model", outcome.model)
        choices = payload.get("choices") or []
        if choices and (choices[0].get("delta") or {}).get("content"):
            chunks += 1
            if outcome.ttft_s is None:
                outcome.ttft_s = time.perf_counter() - started
    if done and chunks == ANSWER_TOKENS:
        outcome.kind, outcome.detail = "ok", "complete"
    else:
        outcome.detail = (
            f"stream ended after {chunks} chunks, [DONE] {'seen' if done else 'missing'}"
        )


async def _read_whole(response: httpx.Response, outcome: Outcome) -> None:
    payload = json.loads(await response.aread())
    outcome.model = payload.get("model")
    tokens = (payload.get("usage") or {}).get("completion_tokens")
    content = ((payload.get("choices") or [{}])[0].get("message") or {}).get("content")
    if content and tokens == ANSWER_TOKENS:
        outcome.kind, outcome.detail = "ok", "complete"
    else:
        outcome.detail = f"answer with {tokens} completion tokens"


async def one_request(
    client: httpx.AsyncClient, url: str, key: str, outcome: Outcome, origin: float
) -> None:
    """Send one chat request and record what came back in `outcome`."""
    body: dict[str, Any] = {"model": MODEL, "messages": MESSAGES, "stream": outcome.arrival.stream}
    started = time.perf_counter()
    try:
        async with client.stream(
            "POST", url, json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            outcome.status = response.status_code
            outcome.request_id = response.headers.get("x-request-id")
            outcome.served_by = response.headers.get("x-resayil-served-by")
            wait = response.headers.get("x-resayil-queue-wait-ms")
            outcome.header_wait_ms = None if wait is None else int(wait)
            if response.status_code != httpx.codes.OK:
                detail = _error_detail(await response.aread())
                if detail is None:
                    outcome.detail = f"HTTP {response.status_code} without an error body"
                else:
                    outcome.kind, (outcome.detail, outcome.message) = "error", detail
            elif outcome.arrival.stream:
                await _read_stream(response, outcome, started)
            else:
                await _read_whole(response, outcome)
    except (httpx.HTTPError, ValueError, KeyError, AttributeError) as error:
        outcome.kind = "lost"
        outcome.detail = f"{type(error).__name__}: {error}"[:200]
    ended = time.perf_counter()
    outcome.total_s = ended - started
    outcome.done_at_s = ended - origin


async def virtual_clocks(url: str, account_ids: dict[str, list[int]]) -> dict[str, list[float]]:
    """How far each account's latest local job was pushed back by fair queuing (its
    start ahead of the wall clock), in seconds, per tier (0 when not ahead). It grows
    with the account's waiting jobs only, never with jobs already served."""
    client = Redis.from_url(url)
    try:
        ahead: dict[str, list[float]] = {}
        now_ms = time.time() * 1000
        for tier, ids in account_ids.items():
            values = await client.mget([keys.last_score("local", i) for i in ids])
            ahead[tier] = [
                0.0 if v is None else max(0.0, (float(v) - now_ms) / 1000) for v in values
            ]
        return ahead
    finally:
        await client.aclose()


def make_open_client() -> httpx.AsyncClient:
    """No connection cap: an open-loop client opens as many as requests are in flight.
    No read timeout: a queued non-streaming request is silent until it is served; the
    scenario's own deadline (`OverloadConfig.drain_s`) bounds the wait instead."""
    timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    return httpx.AsyncClient(timeout=timeout, limits=limits)


async def sample_queues(url: str, origin: float, out: list[Sample], stop: asyncio.Event) -> None:
    """Queue depths and running jobs per pool, every `SAMPLE_EVERY_S`."""
    client = Redis.from_url(url)
    try:
        while not stop.is_set():
            async with client.pipeline(transaction=False) as pipe:
                for pool in ("local", "cloud"):
                    pipe.zcard(keys.queue(pool))
                    pipe.zcard(keys.inflight(pool))
                values = [int(v) for v in await pipe.execute()]
            out.append(Sample(time.perf_counter() - origin, *values))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
    finally:
        await client.aclose()


@dataclass
class Offered:
    warmup: list[Outcome]
    outcomes: list[Outcome]
    samples: list[Sample]
    wall_s: float  # from the first arrival to the last answer
    clocks_ahead_s: dict[str, list[float]]  # per tier, when the last request was sent


async def offer(
    config: OverloadConfig,
    api_url: str,
    accounts: dict[str, list[str]],
    account_ids: dict[str, list[int]],
    redis_url: str,
) -> Offered:
    """Warm up (one request per account), then run the schedule open-loop."""
    url = f"{api_url}/v1/chat/completions"
    arrivals = schedule(config)
    async with make_open_client() as client:
        warmup: list[Outcome] = []
        for tier, tier_keys in accounts.items():
            for index, key in enumerate(tier_keys):
                outcome = Outcome(Arrival(-1, 0.0, tier, index, stream=False))
                await one_request(client, url, key, outcome, time.perf_counter())
                warmup.append(outcome)
        outcomes = [Outcome(arrival) for arrival in arrivals]
        samples: list[Sample] = []
        stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        origin = time.perf_counter()
        sampler = asyncio.create_task(sample_queues(redis_url, origin, samples, stop))
        for outcome in outcomes:
            delay = outcome.arrival.at_s - (time.perf_counter() - origin)
            if delay > 0:
                await asyncio.sleep(delay)
            outcome.lag_s = time.perf_counter() - origin - outcome.arrival.at_s
            key = accounts[outcome.arrival.tier][outcome.arrival.account]
            task = asyncio.create_task(one_request(client, url, key, outcome, origin))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        clocks = await virtual_clocks(redis_url, account_ids)
        if tasks:
            _done, pending = await asyncio.wait(set(tasks), timeout=config.drain_s)
            for task in pending:  # their outcomes stay "lost: no answer before the deadline"
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - origin
        await asyncio.sleep(1.0)  # the queues' state after the last answer
        stop.set()
        await sampler
    return Offered(warmup, outcomes, samples, wall, clocks)


# --- the books ---------------------------------------------------------------------


def _rows(stack: Stack, account_ids: list[int]) -> list[Row]:
    with stack.session() as session:
        found = session.execute(
            select(
                UsageRecord.request_id,
                UsageRecord.account_id,
                UsageRecord.pool,
                UsageRecord.model_served,
                UsageRecord.status,
                UsageRecord.error_code,
                UsageRecord.queue_wait_ms,
                UsageRecord.credits_charged,
                UsageRecord.duration_ms,
            ).where(UsageRecord.account_id.in_(account_ids))
        ).all()
    return [Row(*row) for row in found]


def _prices(stack: Stack) -> dict[str, int]:
    with stack.session() as session:
        return {p.pool: p.credits_per_request for p in session.scalars(select(Price))}


def settled_rows(stack: Stack, account_ids: list[int], expected: int) -> tuple[list[Row], float]:
    """The usage rows once at least `expected` are written (or the timeout passed)."""
    started = time.monotonic()
    rows = _rows(stack, account_ids)
    while len(rows) < expected and time.monotonic() - started < SETTLE_TIMEOUT_S:
        time.sleep(0.1)
        rows = _rows(stack, account_ids)
    waited = time.monotonic() - started
    time.sleep(0.3)  # a duplicate would arrive now, if settlement were not exactly-once
    return _rows(stack, account_ids), waited


def cloud_budget_used(stack: Stack) -> int:
    """Today's cloud budget counter in Redis (the unit admission takes)."""
    day = budget_day(datetime.now(UTC), PortalSettings().budget_timezone).day
    with redis.Redis.from_url(stack.redis_url) as client:
        value = client.get(keys.cloud_budget(day))
    return 0 if value is None else int(value)


def admin_alerts(stack: Stack) -> list[str]:
    with stack.session() as session:
        return list(session.scalars(select(AdminAlert.kind).order_by(AdminAlert.id)))


# --- the scenario ------------------------------------------------------------------


def product_settings(config: OverloadConfig) -> dict[str, str]:
    """The settings that shape the queue under overload, as the processes get them."""
    # What the api reads: its environment (this one's) under the scenario's settings.
    given: dict[str, Any] = {name.lower(): value for name, value in config.env().items()}
    api = PortalSettings(**given)
    return {
        "LOCAL_SLOTS": str(config.local_slots),
        "CLOUD_SLOTS": str(config.cloud_slots),
        "FAILOVER_BACKLOG": str(api.failover_backlog),
        "CLOUD_DAILY_CAP": str(api.cloud_daily_cap),
        "TIER_HEAD_START_MS": str(api.tier_head_start_ms),
        "FAIR_SHARE_MS": str(api.fair_share_ms),
        "MAX_QUEUED_JOBS": str(api.max_queued_jobs),
        "MAX_QUEUE_WAIT_S": f"{api.max_queue_wait_s:g}",
        "FIRST_BYTE_WAIT_S": f"{api.first_byte_wait_s:g}",
    } | dict(config.extra_env)


def run_overload(config: OverloadConfig, *, logs: Path | None, load_before: float) -> OverloadRun:
    with running_stack(
        local_slots=config.local_slots,
        sim_parallel=config.local_slots,  # LOCAL_SLOTS = the Ollama's OLLAMA_NUM_PARALLEL
        failover=True,
        logs=logs,
        token_delay_ms=config.token_delay_ms,
        env=config.env(),
        lift_limits=False,
    ) as stack:
        accounts: dict[str, list[str]] = {}
        account_ids: dict[str, list[int]] = {}
        tier_of: dict[int, str] = {}
        for tier in [tier for tier in TIERS if tier in dict(config.mix)]:
            accounts[tier], account_ids[tier] = [], []
            for _ in range(config.accounts_per_tier):
                account = stack.new_account(plan=tier, credits=CREDITS)
                unlimit_account(stack, account.account_id)
                accounts[tier].append(account.key)
                account_ids[tier].append(account.account_id)
                tier_of[account.account_id] = tier
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            offered = runner.run(
                offer(config, stack.api_url, accounts, account_ids, stack.redis_url)
            )
        load_after = os.getloadavg()[0]
        warmup, outcomes = offered.warmup, offered.outcomes
        admitted = {o.request_id for o in warmup + outcomes if o.request_id is not None}
        rows, waited = settled_rows(stack, list(tier_of), len(admitted))
        books = [
            AccountBooks(
                account_id=account_id,
                tier=tier,
                initial=CREDITS,
                balance=stack.balance(account_id),
                ledger_sum=stack.ledger_sum(account_id),
                charged=sum(r.credits_charged for r in rows if r.account_id == account_id),
            )
            for account_id, tier in tier_of.items()
        ]
        return OverloadRun(
            config=config,
            settings=product_settings(config),
            tier_of=tier_of,
            warmup=warmup,
            outcomes=outcomes,
            rows=rows,
            books=books,
            prices=_prices(stack),
            samples=offered.samples,
            cloud_budget_used=cloud_budget_used(stack),
            alerts=admin_alerts(stack),
            clocks_ahead_s=offered.clocks_ahead_s,
            settle_wait_s=waited,
            load_before=load_before,
            load_after=load_after,
            wall_s=offered.wall_s,
        )
