"""The billing page: balance and plan now; payments arrive with the billing work."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.dashboard import reports
from portal.deps import StateDep
from portal.web.visitor import MemberDep, VisitorDep

router = APIRouter(include_in_schema=False)


@router.get("/billing")
async def billing_page(
    request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep
) -> HTMLResponse:
    board = await reports.dashboard(state, member)
    profile = board.profile
    plan_name = profile.plan_name_ar if visitor.language == "ar" else profile.plan_name_en
    return state.renderer.render(
        request, visitor, "billing/billing.html", {"balance": board.balance, "plan_name": plan_name}
    )
