"""Admission of a chat request: model access, translation check, credit reservation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from portal.catalog.service import CatalogSnapshot, ModelInfo
from portal.config import PortalSettings
from portal.exceptions import (
    DatabaseUnavailable,
    InvalidRequest,
    PaymentRequired,
    PermissionDenied,
)
from portal.keys.service import Caller
from schema import ledger
from schema.messages import ChatJob
from schema.ollama_chat import UnsupportedInput, validate_translatable
from schema.openai import ChatCompletionRequest
from schema.reservations import (
    CreditReservations,
    ReservationsUnavailable,
    ReservationUnconfirmed,
)


@dataclass(frozen=True)
class Admissible:
    """A request that passed every check but the rate limit and the credit reservation."""

    model: ModelInfo
    price: int
    fallback: ModelInfo | None = None  # the cloud model a local request may overflow to
    fallback_price: int = 0


def check(
    *,
    snapshot: CatalogSnapshot,
    settings: PortalSettings,
    caller: Caller,
    request: ChatCompletionRequest,
) -> Admissible:
    """Account, model access and translatability, against the catalog `snapshot`."""
    if caller.suspended:
        raise PermissionDenied("This account is suspended.", code="account_suspended")
    plan_code = caller.active_plan(time.time())
    if plan_code is None:
        raise PaymentRequired(
            "This account has no active plan: its subscription has expired or it never had "
            f"one. Renew at {settings.topup_url} (your purchased credits are kept).",
            code="subscription_expired",
            extra={"renew_url": settings.topup_url},
        )
    model = snapshot.resolve(request.model, plan_code)
    try:
        validate_translatable(request)
    except UnsupportedInput as error:
        raise InvalidRequest(error.message, code=error.code, param=error.param) from error
    fallback = None
    if model.pool == "local":
        fallback = snapshot.models.get(model.cloud_fallback or settings.cloud_fallback_model)
    # Only a cloud model the caller's plan includes: a Basic request is never moved to a
    # model (and a price) its plan does not have; it waits for a local slot instead.
    if fallback is not None and (
        fallback.pool != "cloud" or fallback.name not in snapshot.plans[plan_code].models
    ):
        fallback = None
    return Admissible(
        model,
        snapshot.price(model.pool),
        fallback,
        snapshot.price("cloud") if fallback else 0,
    )


def new_job(
    *,
    caller: Caller,
    request: ChatCompletionRequest,
    admissible: Admissible,
    reply_to: str,
    price: int | None = None,
) -> ChatJob:
    """The job to enqueue, reserving `price` credits (default the model's) and charging
    the model's price; its events go to `reply_to`."""
    reserved = admissible.price if price is None else price
    job = _job(uuid.uuid4().hex, caller, admissible.model, request, reserved, reply_to)
    if reserved != admissible.price:
        job = job.model_copy(update={"credits_price": admissible.price})
    return job


async def reserve_credits(
    *, reservations: CreditReservations, settings: PortalSettings, job: ChatJob
) -> None:
    """Take the job's `credits_reserved` from its account (402 when it lacks them)."""
    try:
        await reservations.reserve(
            account_id=job.account_id, request_id=job.id, price=job.credits_reserved
        )
    except ledger.InsufficientCredits as error:
        raise PaymentRequired(
            f"You have {error.balance} credits left and this request costs {error.price}. "
            f"Top up at {settings.topup_url}",
            extra={"balance": error.balance, "price": error.price, "topup_url": settings.topup_url},
        ) from error
    except ReservationsUnavailable as error:
        raise DatabaseUnavailable() from error
    except ReservationUnconfirmed as error:
        raise ChargeUnconfirmed() from error


class ChargeUnconfirmed(DatabaseUnavailable):
    """The reservation went unanswered (it may have been made): the request must be
    settled as such, so that its credits come back if they were taken after all."""


def cloud_variant(job: ChatJob, fallback: ModelInfo, price: int, budget_day: str) -> ChatJob:
    """The same job, served by the cloud fallback instead."""
    return job.model_copy(
        update={
            "model_served": fallback.name,
            "upstream_model": fallback.upstream_name,
            "pool": "cloud",
            "credits_price": price,
            "budget_day": budget_day,
        }
    )


def _job(
    job_id: str,
    caller: Caller,
    model: ModelInfo,
    request: ChatCompletionRequest,
    price: int,
    reply_to: str,
) -> ChatJob:
    return ChatJob(
        id=job_id,
        account_id=caller.account_id,
        api_key_id=caller.api_key_id,
        model_requested=request.model,
        model_served=model.name,
        upstream_model=model.upstream_name,
        pool=model.pool,
        tier=caller.plan_tier,
        credits_reserved=price,
        enqueued_at_ms=int(time.time() * 1000),
        request=request,
        reply_to=reply_to,
    )
