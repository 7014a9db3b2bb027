"""Typed messages that cross Redis between the api and the dispatcher.

A chat job travels api -> dispatcher as a `ChatJob`. Progress travels back on the
job's channel as a `EventBatch`: one pub/sub message carries one or more events so
a fast model does not cost one Redis message per token.

    Started  the dispatcher claimed the job and opened the upstream stream
    Delta    output: content, thinking and/or whole tool calls
    Done     the upstream finished: finish reason and token counts
    Failed   the job ended in error; `after_output` says whether output already went out
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from schema.openai import ChatCompletionRequest

Pool = Literal["local", "cloud"]


class ChatJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    account_id: int
    api_key_id: int
    model_requested: str
    model_served: str
    upstream_model: str
    pool: Pool
    tier: int
    credits_reserved: int
    enqueued_at_ms: int
    request: ChatCompletionRequest
    # The pub/sub channel of the api process waiting for this job's events.
    reply_to: str
    # What a success costs, when less than what was reserved (a request reserved at the
    # cloud price in case it failed over, then served locally).
    credits_price: int | None = None
    # The cloud budget day this job took a unit from (given back if it fails upstream).
    budget_day: str | None = None

    @property
    def price(self) -> int:
        return self.credits_reserved if self.credits_price is None else self.credits_price


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class Started(BaseModel):
    kind: Literal["started"] = "started"
    model_served: str
    queue_wait_ms: int


class Delta(BaseModel):
    kind: Literal["delta"] = "delta"
    content: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)


class Done(BaseModel):
    kind: Literal["done"] = "done"
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class Failed(BaseModel):
    kind: Literal["failed"] = "failed"
    status: int
    code: str
    message: str
    error_type: str = "api_error"
    param: str | None = None
    retry_after_s: int | None = None
    after_output: bool = False


Event = Annotated[Started | Delta | Done | Failed, Field(discriminator="kind")]


class EventBatch(BaseModel):
    events: list[Event]


EVENT_BATCH = TypeAdapter(EventBatch)


def encode_events(events: list[Started | Delta | Done | Failed]) -> bytes:
    return EventBatch(events=events).model_dump_json().encode()


def decode_events(data: bytes | str) -> list[Started | Delta | Done | Failed]:
    return list(EVENT_BATCH.validate_json(data).events)


class Settlement(BaseModel):
    """How an admitted request ended; written once as its usage row (and refund, if any)."""

    request_id: str
    account_id: int
    api_key_id: int
    model_requested: str
    model_served: str
    pool: Pool
    credits_reserved: int
    credits_charged: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    queue_wait_ms: int = 0
    duration_ms: int = 0
    status: Literal["ok", "error", "cancelled"]
    error_code: str | None = None
    finished_at_ms: int
    # The api gave up waiting for the reservation's answer, so it may or may not have
    # been made: the settler finds out (`ledger.settle`) before refunding anything.
    reservation_unconfirmed: bool = False

    @property
    def refund(self) -> int:
        """The credits it gives back (the `_SETTLE` script checks the same)."""
        return max(0, self.credits_reserved - self.credits_charged)

    @classmethod
    def for_job(
        cls,
        job: ChatJob,
        *,
        status: Literal["ok", "error", "cancelled"],
        charged: bool,
        finished_at_ms: int,
        error_code: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        queue_wait_ms: int = 0,
        duration_ms: int = 0,
        reservation_unconfirmed: bool = False,
    ) -> Settlement:
        return cls(
            request_id=job.id,
            account_id=job.account_id,
            api_key_id=job.api_key_id,
            model_requested=job.model_requested,
            model_served=job.model_served,
            pool=job.pool,
            credits_reserved=job.credits_reserved,
            credits_charged=job.price if charged else 0,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            queue_wait_ms=queue_wait_ms,
            duration_ms=duration_ms,
            status=status,
            error_code=error_code,
            finished_at_ms=finished_at_ms,
            reservation_unconfirmed=reservation_unconfirmed,
        )
