"""Decoding `POST /api/chat` bodies with the checks Ollama's Go JSON binding would make."""

import binascii
import json
import re
from base64 import b64decode
from dataclasses import dataclass
from typing import Any

from simulator.directives import Directives, parse_directives
from simulator.errors import SimError

THINK_LEVELS = frozenset({"low", "medium", "high", "max"})
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_TYPES = {list: "array", dict: "object", str: "string", bool: "bool", float: "number"}


@dataclass(frozen=True)
class ChatCall:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    format: Any
    options: dict[str, Any]
    tools: list[dict[str, Any]]
    think: bool | str | None
    keep_alive: Any
    keep_alive_seconds: float | None
    directives: Directives

    @property
    def num_predict(self) -> int | None:
        value = self.options.get("num_predict")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def stop(self) -> list[str]:
        return [s for s in self.options.get("stop") or [] if s]

    @property
    def wants_thinking(self) -> bool:
        return self.directives.think or self.think is True or self.think in THINK_LEVELS

    def tool_names(self) -> list[str]:
        return [str((tool.get("function") or {}).get("name", "")) for tool in self.tools]


def _type_error(value: Any, field: str, go_type: str) -> SimError:
    kind = _GO_TYPES.get(type(value), "number" if isinstance(value, int) else "value")
    return SimError(
        400,
        f"json: cannot unmarshal {kind} into Go struct field ChatRequest.{field} of type {go_type}",
    )


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], go_type: str) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise _type_error(value, name, go_type)
    return value


def parse_duration(value: Any) -> float | None:
    """`keep_alive` in seconds: a Go duration string or a number of seconds."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        parts = _DURATION_PART.findall(body)
        if body == "0":
            return 0.0
        if parts and "".join(n + u for n, u in parts) == body:
            return sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    raise SimError(400, f'time: invalid duration "{value}"')


def _check_message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise _type_error(message, "messages", "api.Message")
    for name in ("role", "content", "thinking", "tool_name", "tool_call_id"):
        _field(message, name, str, "string")
    images = _field(message, "images", list, "[]api.ImageData")
    for image in images or []:
        if not isinstance(image, str):
            raise _type_error(image, "messages.images", "api.ImageData")
        try:
            b64decode(image, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SimError(400, f"illegal base64 data in image: {exc}") from None
    for call in _field(message, "tool_calls", list, "[]api.ToolCall") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise _type_error(call, "messages.tool_calls", "api.ToolCall")
        _field(function, "name", str, "string")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            raise _type_error(
                arguments,
                "messages.tool_calls.function.arguments",
                "api.ToolCallFunctionArguments",
            )
    return {**message, "role": str(message.get("role") or "").lower()}


def _check_options(options: dict[str, Any]) -> None:
    stop = options.get("stop")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise SimError(400, 'option "stop" must be of type array')
    num_predict = options.get("num_predict")
    if num_predict is not None and (
        isinstance(num_predict, bool) or not isinstance(num_predict, int)
    ):
        raise SimError(400, 'option "num_predict" must be of type integer')


def _check_think(think: Any) -> bool | str | None:
    if think is None or isinstance(think, bool):
        return think
    if isinstance(think, str) and think in THINK_LEVELS:
        return think
    raise SimError(400, f"invalid think value: {json.dumps(think)}")


def _check_format(value: Any) -> Any:
    if value in (None, "") or value == "json" or isinstance(value, dict):
        return value or None
    raise SimError(400, 'invalid format: expected "json" or a valid JSON schema')


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return str(message.get("content") or "")
    return ""


def parse_object(raw: bytes, go_type: str) -> dict[str, Any]:
    if not raw.strip():
        raise SimError(400, "missing request body")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SimError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        kind = _GO_TYPES.get(type(body), "value")
        raise SimError(400, f"json: cannot unmarshal {kind} into Go value of type {go_type}")
    return body


def parse_chat(raw: bytes) -> ChatCall:
    body = parse_object(raw, "api.ChatRequest")
    model = _field(body, "model", str, "string")
    if not model:
        raise SimError(400, "model is required")
    messages = [_check_message(m) for m in _field(body, "messages", list, "[]api.Message") or []]
    options = _field(body, "options", dict, "map[string]interface {}") or {}
    _check_options(options)
    stream = _field(body, "stream", bool, "bool")
    keep_alive = body.get("keep_alive")
    return ChatCall(
        model=model,
        messages=messages,
        stream=stream is not False,
        format=_check_format(body.get("format")),
        options=options,
        tools=[t for t in _field(body, "tools", list, "api.Tools") or [] if isinstance(t, dict)],
        think=_check_think(body.get("think")),
        keep_alive=keep_alive,
        keep_alive_seconds=parse_duration(keep_alive),
        directives=parse_directives(last_user_text(messages)),
    )
