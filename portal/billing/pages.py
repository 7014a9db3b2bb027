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
    account = await reports.summary(state, member)
    return state.renderer.render(
        request,
        visitor,
        "billing/billing.html",
        {"balance": account.balance, "plan_name": account.profile.plan_name(visitor.language)},
    )
