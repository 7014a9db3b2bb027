"""The billing JSON API: offers, subscription, orders, invoices, and MyFatoorah's webhook."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import Response

from portal.billing import actions
from portal.billing.schemas import (
    CheckoutOut,
    OffersOut,
    OrderIn,
    OrderOut,
    PackForSale,
    PlanForSale,
    SubscriptionOut,
    WebhookOut,
)
from portal.deps import StateDep, WebSessionDep
from portal.openapi import SESSION_ERRORS, error_responses
from schema.myfatoorah import SIGNATURE_HEADER

router = APIRouter(prefix="/api/billing", tags=["Billing API"])


@router.get("/offers", summary="Plans and credit packs for sale, with prices in KWD")
async def offers(state: StateDep) -> OffersOut:
    current = await actions.offers(state)
    return OffersOut(
        plans=[PlanForSale.of(plan) for plan in current.plans if plan.for_sale],
        packs=[PackForSale.of(pack) for pack in current.packs],
    )


@router.get(
    "/subscription",
    summary="The account's plan, its status and when it ends",
    responses=SESSION_ERRORS,
)
async def subscription(session: WebSessionDep, state: StateDep) -> SubscriptionOut:
    return SubscriptionOut.of((await actions.overview(state, session)).subscription)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    summary="Order a plan (or its renewal) or a credit pack; pay at `payment_url`",
    responses={
        **SESSION_ERRORS,
        **error_responses(
            400,
            "`item` is not `plan:<code>` or `pack:<code>`",
            404,
            "Nothing for sale by that name",
            503,
            "Payments are off, or MyFatoorah could not be reached (nothing was charged)",
        ),
    },
)
async def create_order(body: OrderIn, session: WebSessionDep, state: StateDep) -> CheckoutOut:
    checkout = await actions.check_out(state, session, body.item)
    return CheckoutOut(order_id=checkout.order_id, payment_url=checkout.payment_url)


@router.get("/orders", summary="The account's orders, newest first", responses=SESSION_ERRORS)
async def list_orders(session: WebSessionDep, state: StateDep) -> list[OrderOut]:
    return [OrderOut.of(order) for order in await actions.list_own(state, session)]


@router.get(
    "/orders/{order_id}",
    summary="One order and its payment status",
    responses={**SESSION_ERRORS, **error_responses(404, "No such order in this account")},
)
async def get_order(order_id: int, session: WebSessionDep, state: StateDep) -> OrderOut:
    return OrderOut.of(await actions.find_own(state, session, order_id))


@router.get(
    "/invoices/{number}",
    summary="A paid order's invoice as PDF (English and Arabic)",
    response_class=Response,
    responses={
        **SESSION_ERRORS,
        **error_responses(404, "No such invoice in this account"),
        200: {"content": {"application/pdf": {}}, "description": "The invoice"},
    },
)
async def invoice(number: str, session: WebSessionDep, state: StateDep) -> Response:
    name, pdf = await actions.invoice_pdf(state, session, number)
    return pdf_response(name, pdf)


def pdf_response(name: str, pdf: bytes) -> Response:
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"content-disposition": f'attachment; filename="{name}.pdf"'},
    )


@router.post(
    "/webhook",
    summary="MyFatoorah's webhook (v2, or v1), checked by its `MyFatoorah-Signature`",
    responses=error_responses(
        400, "Not a JSON webhook body", 401, "The signature does not match the body"
    ),
)
async def webhook(
    request: Request,
    state: StateDep,
    signature: str | None = Header(default=None, alias=SIGNATURE_HEADER),
) -> WebhookOut:
    new = await actions.webhook(state, await request.body(), signature)
    return WebhookOut(duplicate=not new)
