"""Chat jobs for the broker tests: one builder, with the fields the broker reads settable."""

from __future__ import annotations

import uuid

from broker import keys
from schema.messages import ChatJob, Pool
from schema.openai import ChatCompletionRequest

BASIC, PRO, ENTERPRISE = 1, 2, 3
T0 = 1_700_000_000_000
REQUEST = ChatCompletionRequest.model_validate(
    {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]}
)
MODELS: dict[Pool, str] = {"local": "llama3.2:3b", "cloud": "qwen3.5:cloud"}


def chat_job(
    *,
    account_id: int | None = None,
    tier: int = BASIC,
    pool: Pool = "local",
    enqueued_at_ms: int = T0,
    credits_reserved: int = 1,
    reply_to: str = keys.replies("nobody"),
) -> ChatJob:
    """A job for `REQUEST`. Without `account_id`, each job is its own account's (an account
    has one plan, so one tier)."""
    if account_id is None:
        account_id = uuid.uuid4().int % 1_000_000_000
    return ChatJob(
        id=uuid.uuid4().hex,
        account_id=account_id,
        api_key_id=1,
        model_requested=MODELS["local"],
        model_served=MODELS[pool],
        upstream_model=MODELS[pool],
        pool=pool,
        tier=tier,
        credits_reserved=credits_reserved,
        enqueued_at_ms=enqueued_at_ms,
        request=REQUEST,
        reply_to=reply_to,
    )
