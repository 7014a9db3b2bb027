"""Shared OpenAPI documentation of the error shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid request body; `param` names the offending field"),
    401: _error("Missing or invalid API key"),
    402: _error("Not enough credits (with balance, price and top-up URL) or no active plan"),
    403: _error("The model is not included in the caller's plan"),
    404: _error("The model does not exist"),
    502: _error("The upstream model server failed"),
    503: _error("The upstream or the queue is unavailable; see Retry-After"),
}
