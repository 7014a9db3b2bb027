"""The `/v2` endpoints: bearer token, JSON body, one state call, the envelope."""

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from simulator.myfatoorah.envelope import ApiError, failure, invalid, success
from simulator.myfatoorah.methods import PAYMENT_METHODS
from simulator.myfatoorah.state import NO_MATCH, MyFatoorahState
from simulator.myfatoorah.validation import (
    REFUND_STATUS_KEY_TYPES,
    STATUS_KEY_TYPES,
    parse_initiate,
    parse_invoice,
    parse_lookup,
    parse_refund,
)
from simulator.myfatoorah.views import (
    execute_data,
    refund_data,
    refund_status_entry,
    send_data,
    status_data,
)
from simulator.myfatoorah.wire import MalformedJSON, loads

Handler = Callable[[Any, str], tuple[dict[str, Any], str]]


async def json_body(request: Request) -> Any:
    try:
        return loads(await request.body())
    except MalformedJSON:
        raise invalid([("Request", "The request body is not valid JSON.")]) from None


class Api:
    def __init__(self, state: MyFatoorahState) -> None:
        self.state = state

    def authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expected = self.state.config.token
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), expected.encode()
        )

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            if not self.authorized(request):
                return Response(status_code=401)  # an empty body: "bad token" [lib]
            try:
                data, message = handler(await json_body(request), str(request.base_url))
            except ApiError as error:
                return failure(error)
            return success(data, message)

        return run

    def initiate(self, body: Any, base_url: str) -> tuple[dict[str, Any], str]:
        amount, currency = parse_initiate(body)
        methods = [method.entry(amount, currency) for method in PAYMENT_METHODS]
        return {"PaymentMethods": methods}, "Initiated Successfully!"

    def execute(self, body: Any, base_url: str) -> tuple[dict[str, Any], str]:
        invoice = self.state.create_invoice(parse_invoice(body, send=False), base_url=base_url)
        return execute_data(invoice), "Invoice Created Successfully!"

    def send(self, body: Any, base_url: str) -> tuple[dict[str, Any], str]:
        invoice = self.state.create_invoice(parse_invoice(body, send=True), base_url=base_url)
        return send_data(invoice), "Invoice Created Successfully!"

    def status(self, body: Any, base_url: str) -> tuple[dict[str, Any], str]:
        invoice = self.state.find_invoice(parse_lookup(body, STATUS_KEY_TYPES))
        return status_data(invoice), ""

    def refund(self, body: Any, base_url: str) -> tuple[dict[str, Any], str]:
        refund = self.state.make_refund(parse_refund(body))
        return refund_data(refund), "Refund Created Successfully!"

    def refund_status(self, body: Any, base_url: str) -> tuple[dict[str, Any], str]:
        refunds = self.state.refunds.find(parse_lookup(body, REFUND_STATUS_KEY_TYPES))
        if not refunds:
            raise ApiError(NO_MATCH)
        return {"RefundStatusResult": [refund_status_entry(r) for r in refunds]}, ""

    def routes(self) -> dict[str, Callable[[Request], Awaitable[Response]]]:
        handlers: dict[str, Handler] = {
            "InitiatePayment": self.initiate,
            "ExecutePayment": self.execute,
            "SendPayment": self.send,
            "GetPaymentStatus": self.status,
            "MakeRefund": self.refund,
            "GetRefundStatus": self.refund_status,
        }
        return {f"/v2/{name}": self.endpoint(handler) for name, handler in handlers.items()}
