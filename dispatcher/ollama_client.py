"""Stream Ollama's native `/api/chat` and turn it into `Delta`, `Done` and `Failed` events.

`stream_chat` is an async generator that always ends with exactly one `Done` or `Failed`.
Closing it (`aclose()`, or leaving `async with contextlib.aclosing(...)`) leaves the
`client.stream(...)` block, which closes the upstream connection: that is what stops
Ollama generating (ollama-openai-wire-formats §1.7).

This is the hot path: lines are parsed with orjson only, never with pydantic.
"""

from __future__ import annotations

import email.utils
import json
import math
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import httpcore
import orjson

from dispatcher.upstream_http import (
    TRANSPORT_ERRORS,
    UpstreamHTTP,
    request_headers,
    response_headers,
)
from schema.messages import Delta, Done, Failed, ToolCall

Event = Delta | Done | Failed

_FINISH_REASONS = {"stop": "stop", "length": "length"}
_DEFAULT_CLOUD_RETRY_S = 30
_UNAVAILABLE_RETRY_S = 5
_BUSY_RETRY_S = 1
_MAX_ERROR_TEXT = 500


async def stream_chat(
    client: UpstreamHTTP,
    *,
    base_url: str,
    payload: dict[str, Any],
    headers: Mapping[str, str] | None = None,
    client_model: str | None = None,
) -> AsyncGenerator[Event, None]:
    """Yield the events of one upstream chat; `client_model` names the model in messages."""
    reader = _LineReader()
    url = base_url.rstrip("/") + "/api/chat"
    try:
        async with client.pool.stream(
            "POST",
            url,
            headers=request_headers(headers),
            content=orjson.dumps(payload),
            extensions=client.extensions,
        ) as response:
            if response.status != 200:
                body = await response.aread()
                model = client_model or str(payload.get("model", ""))
                yield _failure_for_status(
                    response.status, body, response_headers(response.headers), model
                )
                return
            last: list[Event] = []
            async for line in _ndjson_lines(response):
                if reader.finished:
                    continue  # whatever follows the end is not part of the answer
                events = reader.feed(line)
                if reader.finished:
                    # Read on to the end of the body before handing out the last events:
                    # a caller that stops at `Done` would otherwise close the response
                    # early, and the pool would drop the connection instead of reusing it.
                    last.extend(events)
                    continue
                for event in events:
                    yield event
            if last:
                for event in last:
                    yield event
                return
    except TRANSPORT_ERRORS:  # failed, stalled or broken connections
        yield Failed(
            status=503,
            code="upstream_unavailable",
            message="The connection to the model server was lost."
            if reader.output_sent
            else "The model server could not be reached; please retry.",
            retry_after_s=_UNAVAILABLE_RETRY_S,
            after_output=reader.output_sent,
        )
        return
    yield Failed(
        status=502,
        code="upstream_truncated",
        message="The upstream model stream ended unexpectedly",
        after_output=reader.output_sent,
    )


async def _ndjson_lines(response: httpcore.Response) -> AsyncIterator[bytes]:
    """The body's lines, split on bytes: cheaper than decoding text first (hot path)."""
    pending = b""
    async for chunk in response.aiter_stream():
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line
    if pending:
        yield pending


class _LineReader:
    """Turns NDJSON lines into events; remembers what went out for finish and error mapping."""

    __slots__ = ("finished", "output_sent", "tool_calls_sent")

    def __init__(self) -> None:
        self.finished = False
        self.output_sent = False
        self.tool_calls_sent = False

    def feed(self, line: bytes | str) -> list[Event]:
        if not line or line.isspace():
            return []
        try:
            return self._events(orjson.loads(line))
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
            return self._fail("The upstream model server sent a malformed response")

    def _events(self, obj: dict[str, Any]) -> list[Event]:
        error = obj.get("error")
        if error:
            return self._fail(f"Upstream model error: {error}")
        events: list[Event] = []
        message = obj.get("message") or {}
        content = message.get("content") or ""
        thinking = message.get("thinking") or ""
        raw_calls = message.get("tool_calls")
        if content or thinking or raw_calls:
            tool_calls = [_tool_call(raw) for raw in raw_calls or ()]
            events.append(Delta(content=content, thinking=thinking, tool_calls=tool_calls))
            self.output_sent = True
            self.tool_calls_sent = self.tool_calls_sent or bool(tool_calls)
        if obj.get("done"):
            events.append(self._done(obj))
        return events

    def _done(self, obj: dict[str, Any]) -> Done:
        self.finished = True
        reason = _FINISH_REASONS.get(obj.get("done_reason") or "stop", "stop")
        if reason == "stop" and self.tool_calls_sent:
            reason = "tool_calls"
        return Done(
            finish_reason=reason,
            prompt_tokens=int(obj.get("prompt_eval_count") or 0),
            completion_tokens=int(obj.get("eval_count") or 0),
        )

    def _fail(self, message: str) -> list[Event]:
        self.finished = True
        failed = Failed(
            status=502, code="upstream_error", message=message, after_output=self.output_sent
        )
        return [failed]


def _tool_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(
            {} if arguments is None else arguments, ensure_ascii=False, separators=(",", ":")
        )
    call_id = raw.get("id") or "call_" + secrets.token_hex(12)
    return ToolCall(id=call_id, name=function.get("name") or "", arguments=arguments)


_FIXED_FAILURES: dict[int, dict[str, Any]] = {
    503: {
        "status": 503,
        "code": "upstream_busy",
        "message": "The model server is busy; please retry.",
        "retry_after_s": _BUSY_RETRY_S,
    },
    # Local Ollama has no auth: 401/403 come from its cloud proxy. The 401 body carries a
    # `signin_url` with the server's public key, which must not reach clients.
    401: {
        "status": 502,
        "code": "cloud_unauthorized",
        "message": "The cloud model provider rejected the gateway's credentials.",
    },
    403: {
        "status": 502,
        "code": "cloud_unavailable",
        "message": "Cloud models are currently unavailable on the model server.",
    },
    499: {"status": 499, "code": "cancelled", "message": "The request was cancelled."},
}


def _failure_for_status(status: int, body: bytes, headers: Mapping[str, str], model: str) -> Failed:
    """Map an Ollama (or Ollama-cloud) error status, sent before any output, to a `Failed`."""
    fixed = _FIXED_FAILURES.get(status)
    if fixed is not None:
        return Failed(**fixed)
    if status == 400:
        return Failed(
            status=400,
            code="upstream_bad_request",
            message=_error_text(body) or "The model server rejected the request.",
            error_type="invalid_request_error",
        )
    if status == 404:
        return Failed(
            status=404,
            code="model_not_found",
            message=f"The model `{model}` does not exist or you do not have access to it.",
            error_type="invalid_request_error",
            param="model",
        )
    if status == 429:
        return Failed(
            status=429,
            code="cloud_rate_limited",
            message="The cloud model is rate limited upstream; please retry later.",
            retry_after_s=_retry_after_s(headers.get("retry-after")),
        )
    detail = _error_text(body)
    message = f"Upstream model server error ({status})" + (f": {detail}" if detail else "")
    return Failed(status=502, code="upstream_error", message=message)


def _error_text(body: bytes) -> str:
    """The `error` string of an Ollama error body; tolerant of non-JSON (a proxy's page)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:_MAX_ERROR_TEXT]
    if isinstance(parsed, dict) and parsed.get("error"):
        return str(parsed["error"])[:_MAX_ERROR_TEXT]
    return text[:_MAX_ERROR_TEXT]


def _retry_after_s(value: str | None) -> int:
    """`Retry-After` as whole seconds (delta-seconds or an HTTP date), else the default."""
    if not value:
        return _DEFAULT_CLOUD_RETRY_S
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return _DEFAULT_CLOUD_RETRY_S
    if not math.isfinite(seconds) or seconds <= 0:
        return _DEFAULT_CLOUD_RETRY_S
    return math.ceil(seconds)
