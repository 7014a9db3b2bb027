"""Domain errors, each with a stable `code`, and their one mapping to HTTP.

    GatewayError
    ├── AuthenticationFailed      401 invalid_api_key
    ├── PaymentRequired           402 insufficient_credits | subscription_expired
    ├── PermissionDenied          403 model_not_in_plan | account_suspended | admin_required
    ├── NotFound                  404 model_not_found
    ├── InvalidRequest            400 invalid_request_error (with `param`)
    ├── RateLimited               429 rate_limit_exceeded (with Retry-After)
    └── ServiceUnavailable        503 (with Retry-After)

Under `/v1` bodies follow OpenAI's error shape: {"error": {message, type, param, code}}.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from broker.connection import UNAVAILABLE


class GatewayError(Exception):
    status = 500
    error_type = "api_error"
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}


class AuthenticationFailed(GatewayError):
    status, error_type, code = 401, "invalid_request_error", "invalid_api_key"


class PaymentRequired(GatewayError):
    status, error_type, code = 402, "insufficient_quota", "insufficient_credits"


class PermissionDenied(GatewayError):
    status, error_type, code = 403, "permission_error", "model_not_in_plan"


class NotFound(GatewayError):
    status, error_type, code = 404, "invalid_request_error", "model_not_found"


class InvalidRequest(GatewayError):
    status, error_type, code = 400, "invalid_request_error", "invalid_request_error"


class RateLimited(GatewayError):
    status, error_type, code = 429, "requests", "rate_limit_exceeded"


class ServiceUnavailable(GatewayError):
    status, error_type, code = 503, "api_error", "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "The accounts database is unavailable; the request was not charged. "
            "Please retry shortly.",
            headers={"retry-after": "5"},
        )


def error_body(
    message: str, error_type: str, code: str | None, param: str | None, **extra: Any
) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": error_type, "param": param, "code": code, **extra}
    }


def gateway_error_response(error: GatewayError) -> JSONResponse:
    body = error_body(error.message, error.error_type, error.code, error.param, **error.extra)
    return JSONResponse(body, status_code=error.status, headers=error.headers)


# Pydantic names the member of a union it tried (`str`, `list[...]`, `TextPart`); such a
# segment is not a request field, so the offending param ends just before it.
_UNION_MEMBER = re.compile(r"[\[\]]|^[A-Z]|^(str|int|float|bool|list|dict|none)$")


def _param(location: tuple[int | str, ...]) -> tuple[str | None, bool]:
    """The offending param as OpenAI writes it (`messages[0].role`), and whether it is a union."""
    parts: list[int | str] = []
    in_union = False
    for part in location:
        if part == "body":
            continue
        if isinstance(part, str) and _UNION_MEMBER.search(part):
            in_union = True
            break
        parts.append(part)
    if not parts:
        return None, in_union
    text = str(parts[0])
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text, in_union


async def _on_gateway_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, GatewayError)
    return gateway_error_response(error)


async def _on_validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    param, in_union = _param(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        message, param = "The request body is not valid JSON.", None
    elif param is None:
        message = "The request body must be a JSON object."
    elif in_union:
        message = f"Invalid value for '{param}': it matches none of the accepted types."
    elif first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'."
    else:
        message = f"Invalid value for '{param}': {first.get('msg', 'invalid')}."
    return JSONResponse(
        error_body(message, "invalid_request_error", "invalid_request_error", param),
        status_code=400,
    )


async def _on_http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return JSONResponse(
        error_body(str(error.detail), "invalid_request_error", code, None),
        status_code=error.status_code,
        headers=dict(error.headers or {}),
    )


async def _on_broker_unavailable(_request: Request, _error: Exception) -> JSONResponse:
    return JSONResponse(
        error_body(
            "The service is briefly unavailable; please retry.",
            "api_error",
            "service_unavailable",
            None,
        ),
        status_code=503,
        headers={"retry-after": "1"},
    )


async def _on_database_unavailable(request: Request, _error: Exception) -> JSONResponse:
    return await _on_gateway_error(request, DatabaseUnavailable())


async def _on_unexpected(_request: Request, _error: Exception) -> JSONResponse:
    return JSONResponse(
        error_body(
            "The server had an error processing the request.", "api_error", "internal_error", None
        ),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _on_gateway_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, _on_broker_unavailable)
    # The database refused or dropped the connection (it is down, or SQLite is locked).
    app.add_exception_handler(OperationalError, _on_database_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
