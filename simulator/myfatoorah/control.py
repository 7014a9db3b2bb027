"""`/_control/*`: what tests drive without a browser (no token; never part of the real API)."""

import json
from typing import Any, cast

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulator.myfatoorah.faults import FAULT_MODES, FaultMode
from simulator.myfatoorah.payments import PaymentRefused
from simulator.myfatoorah.state import MyFatoorahState
from simulator.myfatoorah.views import refund_status_entry
from simulator.myfatoorah.wire import dumps


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise ControlError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _id(request: Request, name: str) -> int:
    raw = str(request.path_params[name])
    if not (raw.isascii() and raw.isdigit() and len(raw) < 12):
        raise ControlError(404, f"no such {name}")
    return int(raw)


class Control:
    def __init__(self, state: MyFatoorahState) -> None:
        self.state = state

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            count = body.get("count", 1)
            if not isinstance(count, int) or isinstance(count, bool):
                raise ControlError(400, "count must be an integer")
            mode = body.get("mode")
            if mode not in FAULT_MODES or count < 0:
                raise ControlError(400, f"mode must be one of {FAULT_MODES}, count >= 0")
            self.state.inject_fault(cast(FaultMode, mode), count)
        return JSONResponse({"pending": self.state.faults.pending})

    async def webhooks(self, request: Request) -> Response:
        deliveries = [d.as_dict() for d in self.state.deliveries]
        return JSONResponse({"deliveries": deliveries, "held": len(self.state.webhooks.held)})

    async def release(self, request: Request) -> Response:
        order = (await _body(request)).get("order", "sent")
        if order not in ("sent", "reverse"):
            raise ControlError(400, 'order must be "sent" or "reverse"')
        delivered = await run_in_threadpool(self.state.release_webhooks, order)
        return JSONResponse({"deliveries": [d.as_dict() for d in delivered]})

    async def forged(self, request: Request) -> Response:
        invoice_id = (await _body(request)).get("invoice_id")
        if invoice_id is not None and not isinstance(invoice_id, int):
            raise ControlError(400, "invoice_id must be an integer")
        try:
            delivered = await run_in_threadpool(self.state.deliver_forged, invoice_id)
        except LookupError as exc:
            raise ControlError(404, str(exc)) from None
        return JSONResponse({"deliveries": [d.as_dict() for d in delivered]})

    async def pay(self, request: Request) -> Response:
        card = (await _body(request)).get("card_number", "")
        try:
            outcome = self.state.pay(
                _id(request, "invoice_id"), card if isinstance(card, str) else ""
            )
        except PaymentRefused as error:
            return _error(error.status, error.code, error.message)
        return JSONResponse(
            {
                "payment_id": outcome.payment_id,
                "redirect_url": outcome.redirect_url,
                "succeeded": outcome.succeeded,
                "transaction_status": outcome.transaction_status,
            }
        )

    async def expire(self, request: Request) -> Response:
        invoice_id = _id(request, "invoice_id")
        try:
            self.state.expire_invoice(invoice_id)
        except KeyError:
            raise ControlError(404, "no such invoice_id") from None
        return JSONResponse({"invoice_id": invoice_id, "expired": True})

    async def refund_status(self, request: Request) -> Response:
        status = (await _body(request)).get("status")
        try:
            refund = self.state.refunds.set_status(_id(request, "refund_id"), str(status))
        except KeyError:
            raise ControlError(404, "no such refund_id") from None
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        return Response(dumps(refund_status_entry(refund)), media_type="application/json")

    async def reset(self, request: Request) -> Response:
        await run_in_threadpool(self.state.reset)
        return JSONResponse({"reset": True})

    async def config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.state.configure(**await _body(request))
            except ValidationError as exc:
                raise ControlError(400, str(exc)) from None
        return JSONResponse(self.state.config.model_dump())


async def control_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ControlError)
    return _error(exc.status, "control", exc.message)
