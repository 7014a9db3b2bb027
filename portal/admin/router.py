"""The platform admin's JSON API (keys created by a platform admin)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from portal.accounts.service import set_account_rate_limit
from portal.deps import CallerDep, StateDep
from portal.exceptions import PermissionDenied
from portal.keys.service import Caller
from portal.openapi import AUTH_ERRORS, ErrorResponse

router = APIRouter(prefix="/api/admin", tags=["Admin API"])


def require_admin(caller: CallerDep) -> Caller:
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
