"""The dashboard page: balance, usage charts and tables, keys."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.dashboard import reports
from portal.deps import StateDep
from portal.web.visitor import MemberDep, VisitorDep

router = APIRouter(include_in_schema=False)

PERIOD_FORMATS = {"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}


@router.get("/dashboard")
async def dashboard_page(
    request: Request,
    visitor: VisitorDep,
    member: MemberDep,
    state: StateDep,
    period: Literal["day", "week", "month"] = "day",
) -> HTMLResponse:
    board = await reports.dashboard(state, member)
    periods = {"day": board.usage.days, "week": board.usage.weeks, "month": board.usage.months}
    return state.renderer.render(
        request,
        visitor,
        "dashboard/dashboard.html",
        {
            "board": board,
            "period": period,
            "periods": periods[period],
            "period_format": PERIOD_FORMATS[period],
        },
    )
