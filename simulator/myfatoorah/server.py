"""The double's HTTP surface: MyFatoorah's `/v2` API, the payment page, `/_control/*`."""

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from simulator.myfatoorah.api import Api
from simulator.myfatoorah.config import MyFatoorahConfig
from simulator.myfatoorah.control import Control, ControlError, control_error
from simulator.myfatoorah.faults import FaultGate
from simulator.myfatoorah.payment_page import PaymentPage
from simulator.myfatoorah.state import MyFatoorahState
from simulator.threaded import quiet_config


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(exc.detail, status_code=exc.status_code)


def _control_routes(control: Control) -> list[Route]:
    return [
        Route("/_control/faults", control.faults, methods=["GET", "POST"]),
        Route("/_control/webhooks", control.webhooks, methods=["GET"]),
        Route("/_control/webhooks/release", control.release, methods=["POST"]),
        Route("/_control/webhooks/forged", control.forged, methods=["POST"]),
        Route("/_control/invoices/{invoice_id}/pay", control.pay, methods=["POST"]),
        Route("/_control/invoices/{invoice_id}/expire", control.expire, methods=["POST"]),
        Route("/_control/refunds/{refund_id}/status", control.refund_status, methods=["POST"]),
        Route("/_control/config", control.config, methods=["GET", "POST"]),
        Route("/_control/reset", control.reset, methods=["POST"]),
    ]


def create_app(config: MyFatoorahConfig) -> Starlette:
    """The Starlette app; serve it through `gate(app)` so injected faults apply."""
    state = MyFatoorahState(config)
    page = PaymentPage(state)
    routes = [Route(path, run, methods=["POST"]) for path, run in Api(state).routes().items()]
    routes += [
        Route("/pay/{invoice_id}", page.show, methods=["GET"]),
        Route("/pay/{invoice_id}", page.submit, methods=["POST"]),
        Route("/pay/{invoice_id}/result", page.result, methods=["GET"]),
        *_control_routes(Control(state)),
    ]
    handlers = {ControlError: control_error, HTTPException: http_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.myfatoorah = state
    return app


def app_state(app: Starlette) -> MyFatoorahState:
    state: MyFatoorahState = app.state.myfatoorah
    return state


def gate(app: Starlette) -> FaultGate:
    return FaultGate(app, app_state(app).faults)


def serve(config: MyFatoorahConfig, host: str, port: int) -> None:
    app = create_app(config)
    app_state(app).server_url = f"http://{host}:{port}"
    try:
        uvicorn.Server(quiet_config(gate(app), host, port)).run()
    finally:
        app_state(app).webhooks.stop()
