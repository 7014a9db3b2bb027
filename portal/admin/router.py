"""The platform admin's JSON API (keys created by a platform admin)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from portal.accounts.service import set_account_rate_limit
from portal.billing.refunds import Refunded, refund_order
from portal.deps import CallerDep, StateDep
from portal.exceptions import PermissionDenied, ServiceUnavailable
from portal.keys.service import Caller
from portal.openapi import AUTH_ERRORS, ErrorResponse

router = APIRouter(prefix="/api/admin", tags=["Admin API"])


async def require_admin(caller: CallerDep) -> Caller:
    if not caller.is_admin:
        raise PermissionDenied("This needs a platform admin's key.", code="admin_required")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]


class RateLimitIn(BaseModel):
    requests_per_minute: int | None = Field(
        ge=0, description="0 = unlimited; null = back to the plan's limit"
    )


class RateLimitOut(BaseModel):
    account_id: int
    requests_per_minute: int | None


@router.put(
    "/accounts/{account_id}/rate-limit",
    summary="Override an account's requests per minute (a negotiated rate, or a load test)",
    responses={
        **AUTH_ERRORS,
        403: {"model": ErrorResponse, "description": "Not a platform admin's key"},
        404: {"model": ErrorResponse, "description": "No such account"},
    },
)
async def set_rate_limit(
    account_id: int, body: RateLimitIn, admin: AdminDep, state: StateDep
) -> RateLimitOut:
    def write() -> None:
        with state.sessions() as session, session.begin():
            set_account_rate_limit(
                session,
                account_id=account_id,
                rpm=body.requests_per_minute,
                actor=f"key:{admin.api_key_id}",
            )

    await anyio.to_thread.run_sync(write)
    await state.auth_cache.revoke_account(account_id)  # applies from the next request
    return RateLimitOut(account_id=account_id, requests_per_minute=body.requests_per_minute)


class RefundIn(BaseModel):
    amount_fils: int | None = Field(
        default=None, gt=0, description="Fils to refund; null = all that is left"
    )
    comment: str = Field(default="", max_length=200)


class RefundOut(BaseModel):
    order_id: int
    amount_fils: int
    refunded_fils: int = Field(description="Refunded on this order in total")
    refund_id: str
    refund_reference: str


@router.post(
    "/orders/{order_id}/refund",
    summary="Refund a paid order through MyFatoorah, in part or in full (credits are kept)",
    responses={
        **AUTH_ERRORS,
        400: {"model": ErrorResponse, "description": "Not paid, or more than is left"},
        403: {"model": ErrorResponse, "description": "Not a platform admin's key"},
        404: {"model": ErrorResponse, "description": "No such order"},
        503: {"model": ErrorResponse, "description": "Payments off, or MyFatoorah refused"},
    },
)
async def refund(order_id: int, body: RefundIn, admin: AdminDep, state: StateDep) -> RefundOut:
    client = state.payments
    if client is None:
        raise ServiceUnavailable("Payments are not configured.", code="payments_unavailable")
    done: Refunded = await anyio.to_thread.run_sync(
        lambda: refund_order(
            state.sessions,
            client,
            order_id=order_id,
            amount_fils=body.amount_fils,
            comment=body.comment,
            actor=f"key:{admin.api_key_id}",
        )
    )
    return RefundOut(**vars(done))
