"""Pages: pricing, billing (plan, balance, buy), the return from MyFatoorah, an order,
the payment history with its CSV, and invoice PDFs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from portal.billing import actions
from portal.billing.history import as_csv
from portal.billing.router import pdf_response
from portal.deps import StateDep
from portal.exceptions import GatewayError, NotFound
from portal.state import AppState
from portal.translatable import N_
from portal.web.rendering import kwd
from portal.web.responses import csrf_refused, error_page, redirect
from portal.web.visitor import MemberDep, Visitor, VisitorDep

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]

STATUS_NAMES = {
    "created": N_("Created"),
    "pending": N_("Awaiting payment"),
    "paid": N_("Paid"),
    "failed": N_("Failed"),
    "expired": N_("Expired"),
    "review": N_("Under review"),
}


@router.get("/pricing")
async def pricing_page(request: Request, visitor: VisitorDep, state: StateDep) -> HTMLResponse:
    offers = await actions.offers(state)
    return state.renderer.render(
        request, visitor, "billing/pricing.html", {"offers": offers, "subscription": None}
    )


async def _billing(
    state: AppState,
    request: Request,
    visitor: Visitor,
    member: MemberDep,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    overview = await actions.overview(state, member)
    return state.renderer.render(
        request,
        visitor,
        "billing/billing.html",
        {
            "subscription": overview.subscription,
            "balance": overview.balance,
            "offers": overview.offers,
            "orders": overview.recent,
            "status_names": STATUS_NAMES,
            "payments_enabled": state.payments is not None,
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/billing")
async def billing_page(
    request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep
) -> HTMLResponse:
    return await _billing(state, request, visitor, member)


@router.post("/billing/checkout")
async def check_out(
    request: Request,
    visitor: VisitorDep,
    member: MemberDep,
    state: StateDep,
    csrf_token: FormText = "",
    item: FormText = "",
) -> Response:
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    try:
        checkout = await actions.check_out(state, member, item)
    except GatewayError as error:
        translate = state.renderer.translator(visitor.language)
        return await _billing(
            state,
            request,
            visitor,
            member,
            error=translate(error.message),
            status_code=error.status,
        )
    return redirect(checkout.payment_url)


@router.get("/billing/callback")
async def returned_from_payment(
    state: StateDep,
    order: Annotated[int | None, Query()] = None,
    payment_id: Annotated[str | None, Query(alias="paymentId")] = None,
    payment_id_again: Annotated[str | None, Query(alias="Id")] = None,
) -> Response:
    """MyFatoorah sends the browser here after an attempt; only its API says what happened."""
    key = (payment_id or payment_id_again or "").strip()
    outcome = await actions.returned_from_payment(state, key[:64]) if key else None
    order_id = outcome.order_id if outcome and outcome.order_id else order
    return redirect(f"/billing/orders/{order_id}" if order_id else "/billing")


@router.get("/billing/orders/{order_id}")
async def order_page(
    order_id: int, request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep
) -> Response:
    try:
        order = await actions.find_own(state, member, order_id)
    except NotFound as error:
        return _not_found(state, request, visitor, error)
    return state.renderer.render(
        request, visitor, "billing/order.html", {"order": order, "status_names": STATUS_NAMES}
    )


@router.get("/billing/history")
async def history_page(
    request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep
) -> HTMLResponse:
    orders = await actions.list_own(state, member)
    return state.renderer.render(
        request,
        visitor,
        "billing/history.html",
        {"orders": orders, "status_names": STATUS_NAMES},
    )


@router.get("/billing/history.csv")
async def history_csv(member: MemberDep, visitor: VisitorDep, state: StateDep) -> Response:
    orders = await actions.list_own(state, member)
    text = as_csv(orders, language=visitor.language, kwd=kwd)
    return Response(
        "\ufeff" + text,  # the BOM makes spreadsheet apps read the Arabic as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="resayil-payments.csv"'},
    )


@router.get("/billing/invoices/{number}.pdf")
async def invoice_pdf(
    number: str, request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep
) -> Response:
    try:
        name, pdf = await actions.invoice_pdf(state, member, number)
    except NotFound as error:
        return _not_found(state, request, visitor, error)
    return pdf_response(name, pdf)


def _not_found(state: AppState, request: Request, visitor: Visitor, error: NotFound) -> Response:
    return error_page(
        state,
        request,
        visitor,
        heading=N_("Not found"),
        message=error.message,
        status_code=404,
        back="/billing",
    )
