"""Running one claimed job against Ollama, from first byte to settlement."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from broker.budget import CloudBudget
from broker.queue import Claimed, JobQueue
from dispatcher.ollama_client import stream_chat
from dispatcher.publisher import BatchPublisher, ClientCancelled, LeaseLost
from dispatcher.upstream_http import UpstreamHTTP
from schema.messages import Delta, Done, Failed, Settlement, Started, encode_events
from schema.ollama_chat import UnsupportedInput, to_ollama_chat


def now_ms() -> int:
    return int(time.time() * 1000)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upstream:
    base_url: str
    headers: dict[str, str]
    # ollama.com itself names cloud models without the `:cloud` suffix that a local
    # Ollama uses to forward them (`gpt-oss:120b`, not `gpt-oss:120b-cloud`).
    direct_cloud: bool = False

    def model_name(self, upstream_model: str) -> str:
        return strip_cloud_suffix(upstream_model) if self.direct_cloud else upstream_model


def strip_cloud_suffix(name: str) -> str:
    """`qwen3.5:cloud` -> `qwen3.5`, `gpt-oss:20b:cloud` -> `gpt-oss:20b`,
    `gpt-oss:120b-cloud` -> `gpt-oss:120b` (case-insensitive, as Ollama matches)."""
    lowered = name.lower()
    if lowered.endswith(":cloud"):  # name:cloud and name:tag:cloud
        return name[: -len(":cloud")]
    if lowered.endswith("-cloud") and ":" in name:  # the legacy name:tag-cloud
        return name[: -len("-cloud")]
    return name


@dataclass
class Outcome:
    terminal: Done | Failed
    status: str
    charged: bool


async def run_job(
    *,
    queue: JobQueue,
    client: UpstreamHTTP,
    upstream: Upstream,
    claimed: Claimed,
    cancelled: asyncio.Future[None],
    budget: CloudBudget | None = None,
) -> None:
    """Stream the job, publish its events, and finish it with exactly one settlement."""
    job = claimed.job
    started_ms = now_ms()
    publisher = BatchPublisher(queue, claimed)
    unpublished: list[Started | Delta] = []
    try:
        outcome = await _until_cancelled(
            _generate(
                job_client=client,
                upstream=upstream,
                claimed=claimed,
                publisher=publisher,
                started_ms=started_ms,
            ),
            cancelled,
        )
        if outcome is None:
            publisher.abort()
            outcome = _cancelled(publisher)
        else:
            unpublished = await publisher.close()
    except LeaseLost:
        return
    except ClientCancelled:
        outcome = _cancelled(publisher)
    except asyncio.CancelledError:
        publisher.abort()
        raise
    if isinstance(outcome.terminal, Failed):
        after_output = publisher.sent_output or any(isinstance(e, Delta) for e in unpublished)
        outcome.terminal = outcome.terminal.model_copy(update={"after_output": after_output})
    done = outcome.terminal if isinstance(outcome.terminal, Done) else None
    settlement = Settlement.for_job(
        job,
        status=outcome.status,  # type: ignore[arg-type]
        charged=outcome.charged,
        finished_at_ms=now_ms(),
        error_code=outcome.terminal.code if isinstance(outcome.terminal, Failed) else None,
        prompt_tokens=done.prompt_tokens if done else 0,
        completion_tokens=done.completion_tokens if done else 0,
        queue_wait_ms=max(0, started_ms - job.enqueued_at_ms),
        duration_ms=now_ms() - started_ms,
    )
    batch = encode_events([*unpublished, outcome.terminal])
    finished = await queue.finish(claimed, batch, settlement)
    # A line for each job that did not end well; those that did are in the usage rows
    # (and here at DEBUG): under load, a line per job cost 5-7% of the dispatcher's CPU.
    log.log(
        logging.DEBUG if outcome.status == "ok" else logging.INFO,
        "job %s on %s (%s): %s in %d ms",
        job.id,
        job.pool,
        job.model_served,
        outcome.status,
        settlement.duration_ms,
    )
    if finished and budget is not None and job.budget_day and not outcome.charged:
        # The cloud served nothing billable: the day's budget unit goes back.
        await budget.give_back(job.budget_day)


async def _generate(
    *,
    job_client: UpstreamHTTP,
    upstream: Upstream,
    claimed: Claimed,
    publisher: BatchPublisher,
    started_ms: int,
) -> Outcome:
    job = claimed.job
    try:
        payload = to_ollama_chat(
            job.request, upstream_model=upstream.model_name(job.upstream_model)
        )
    except UnsupportedInput as error:
        failed = Failed(
            status=400,
            code="invalid_request",
            message=str(error),
            error_type="invalid_request_error",
            param=error.param,
        )
        return Outcome(failed, "error", charged=False)
    started = False
    first_output = True
    events = stream_chat(
        job_client,
        base_url=upstream.base_url,
        payload=payload,
        headers=upstream.headers,
        client_model=job.model_requested,
    )
    try:
        async for event in events:
            if isinstance(event, Failed):
                return Outcome(event, "error", charged=False)
            if not started:
                started = True
                publisher.add(
                    Started(
                        model_served=job.model_served,
                        queue_wait_ms=max(0, started_ms - job.enqueued_at_ms),
                    )
                )
            if isinstance(event, Done):
                return Outcome(event, "ok", charged=True)
            publisher.add(event)
            if first_output:
                first_output = False
                await publisher.first_published()
    finally:
        await events.aclose()  # closes the upstream stream, so Ollama stops generating
    return Outcome(
        Failed(
            status=502,
            code="upstream_truncated",
            message="The upstream model stream ended unexpectedly.",
        ),
        "error",
        charged=False,
    )


async def _until_cancelled(
    work: Coroutine[Any, Any, Outcome], cancelled: asyncio.Future[None]
) -> Outcome | None:
    """Run `work` unless the client cancels first (`cancelled` resolves); then stop it at
    once (None). The future is waited on as it is: no task to watch it."""
    task = asyncio.create_task(work)
    watched: set[asyncio.Future[Any]] = {task, cancelled}
    try:
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, ClientCancelled, LeaseLost):
        await task
    return None


def _cancelled(publisher: BatchPublisher) -> Outcome:
    failed = Failed(status=499, code="client_cancelled", message="The client closed the request.")
    # Output already delivered is paid for; a request cancelled before any output is not.
    return Outcome(failed, "cancelled", charged=publisher.sent_output)
