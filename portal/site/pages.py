"""The public landing page: what we offer, from the plan and model data."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.catalog.offers import Offers, current_offers
from portal.deps import StateDep
from portal.web.visitor import VisitorDep

router = APIRouter(include_in_schema=False)


@router.get("/")
async def landing_page(request: Request, visitor: VisitorDep, state: StateDep) -> HTMLResponse:
    def read() -> Offers:
        with state.sessions() as session:
            return current_offers(session)

    offers = await anyio.to_thread.run_sync(read)
    first_model = next((m.name for p in offers.plans for m in p.models if m.pool == "local"), "")
    return state.renderer.render(
        request,
        visitor,
        "site/landing.html",
        {
            "offers": offers,
            "example_model": first_model or "llama3.2:3b",
            "signup_credits": state.settings.signup_credits,
        },
    )
