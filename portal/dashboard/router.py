"""The JSON API for the logged-in user's usage."""

from __future__ import annotations

from fastapi import APIRouter

from portal.dashboard import reports
from portal.deps import StateDep, WebSessionDep
from portal.openapi import SESSION_ERRORS
from portal.usage.service import UsageReport

router = APIRouter(prefix="/api", tags=["Account API"])


@router.get(
    "/usage",
    summary="Requests, tokens and credits: by hour (24 h), day (30 d), ISO week, month, "
    "model and key",
    responses=SESSION_ERRORS,
)
async def usage(session: WebSessionDep, state: StateDep) -> UsageReport:
    return await reports.usage_report(state, session)
