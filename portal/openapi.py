"""OpenAPI documentation of the wire shapes, so /openapi.json says what the API does."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ChatMessageOut(BaseModel):
    role: Literal["assistant"]
    content: str | None
    refusal: None = None
    annotations: list[Any] = []
    tool_calls: list[dict[str, Any]] | None = None


class ChoiceOut(BaseModel):
    index: int
    message: ChatMessageOut
    logprobs: None = None
    finish_reason: Literal["stop", "length", "tool_calls"]


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    """`stream: false`. With `stream: true` the body is `text/event-stream`: `data:` lines
    of `chat.completion.chunk` objects, then `data: [DONE]`."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    system_fingerprint: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or invalid API key"),
}
MODEL_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS,
    404: _error("No such model for this caller (unknown, hidden or outside the plan)"),
}
CHAT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid request body; `param` names the offending field"),
    **AUTH_ERRORS,
    402: _error("Not enough credits (with balance, price and top-up URL) or no active plan"),
    403: _error("The model is not included in the caller's plan, or the account is suspended"),
    404: _error("The model does not exist"),
    429: _error("Rate limit or per-account concurrency cap reached; see Retry-After"),
    502: _error("The upstream model server failed"),
    503: _error(
        "Queue full, queue wait exceeded, cloud budget exhausted, upstream unavailable, or "
        "Redis or the accounts database not answering (not charged); see Retry-After and "
        "x-should-retry"
    ),
}


def _can_be_invalid(operation: dict[str, Any]) -> bool:
    """A body, or a parameter that is not free text, can fail validation (a 400)."""
    if "400" in operation.get("responses", {}):
        return False
    typed = any(
        p.get("schema", {}).get("type") not in ("string", None)
        for p in operation.get("parameters", [])
    )
    return "requestBody" in operation or typed


def install_openapi(app: FastAPI) -> None:
    """Validation errors are answered as 400 in OpenAI's shape, never FastAPI's 422."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    had_422 = responses.pop("422", None) is not None
                    if had_422 and _can_be_invalid(operation):
                        responses["400"] = {
                            "description": "Invalid request; `param` names the offending field",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ErrorResponse"}
                                }
                            },
                        }
            for unused in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def error_responses(*pairs: int | str) -> dict[int | str, dict[str, Any]]:
    """`error_responses(404, "No such key", 429, "...")`: documented error statuses."""
    return {pairs[i]: _error(str(pairs[i + 1])) for i in range(0, len(pairs), 2)}


SESSION_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Not logged in: no session, or it ended (logout, password change, idle)"),
    403: _error("Session cookie used without the matching `X-CSRF-Token` header"),
}
