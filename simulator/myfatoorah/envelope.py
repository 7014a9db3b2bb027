"""The response envelope of every `/v2` call, and the errors that become one."""

from typing import Any

from starlette.responses import Response

from simulator.myfatoorah.wire import dumps

INVALID_DATA = "Invalid data"


class ApiError(Exception):
    """A refusal answered as `IsSuccess: false` (HTTP 400 unless told)."""

    def __init__(
        self,
        message: str,
        errors: list[tuple[str, str]] | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.status = status


def invalid(errors: list[tuple[str, str]]) -> ApiError:
    return ApiError(INVALID_DATA, errors)


def envelope(
    data: dict[str, Any] | None,
    message: str = "",
    errors: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "IsSuccess": data is not None,
        "Message": message,
        "ValidationErrors": None
        if errors is None
        else [{"Name": name, "Error": error} for name, error in errors],
        "Data": data,
    }


class WireJSON(Response):
    """JSON written by `wire.dumps`, so decimals keep their exact digits."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def success(data: dict[str, Any], message: str = "") -> Response:
    return WireJSON(envelope(data, message))


def failure(error: ApiError) -> Response:
    return WireJSON(envelope(None, error.message, error.errors), status_code=error.status)
