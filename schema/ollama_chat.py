"""Translate a validated OpenAI chat request into the body of Ollama's native `/api/chat`.

The gateway does not use Ollama's own OpenAI endpoint: it drops `max_completion_tokens`,
forces `temperature`/`top_p` to 1.0 when absent, splits content parts into separate
messages and swallows mid-stream errors. Upstream is always streamed, even when the
client asked for one JSON body.

It lives in the shared kernel so the API can run `validate_translatable` at admission and
answer a 400 before anything is queued.
"""

from __future__ import annotations

import binascii
import json
import re
from base64 import b64decode
from typing import Any

from schema.openai import (
    ChatCompletionRequest,
    ContentPart,
    FunctionDef,
    ImagePart,
    Message,
    MessageToolCall,
)

# Ollama accepts exactly these data URLs (openai/openai.go); anything else it rejects.
_DATA_URL = re.compile(r"data:(?:image/(?:png|jpeg|jpg|webp))?;base64,", re.IGNORECASE)

_SAMPLING_OPTIONS = ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty")


class UnsupportedInput(ValueError):
    """A request that is valid OpenAI but cannot be expressed for Ollama (a client error)."""

    code = "unsupported_input"

    def __init__(self, *, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def validate_translatable(request: ChatCompletionRequest) -> None:
    """Raise `UnsupportedInput` for input Ollama cannot take (images, tool-call arguments)."""
    _messages(request)


def to_ollama_chat(request: ChatCompletionRequest, *, upstream_model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": upstream_model,
        "messages": _messages(request),
        "stream": True,
    }
    options = _options(request)
    if options:
        body["options"] = options
    response_format = _format(request)
    if response_format is not None:
        body["format"] = response_format
    if request.tools and request.tool_choice != "none":
        body["tools"] = [_tool(tool.function) for tool in request.tools]
    return body


def _options(request: ChatCompletionRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if request.output_limit is not None:
        options["num_predict"] = request.output_limit
    if request.stop is not None:
        options["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    for name in _SAMPLING_OPTIONS:
        value = getattr(request, name)
        if value is not None:
            options[name] = value
    return options


def _format(request: ChatCompletionRequest) -> str | dict[str, Any] | None:
    response_format = request.response_format
    if response_format is None or response_format.type == "text":
        return None
    json_schema = response_format.json_schema
    if response_format.type == "json_schema" and json_schema and json_schema.schema_ is not None:
        return json_schema.schema_
    return "json"


def _tool(function: FunctionDef) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": function.name}
    if function.description is not None:
        spec["description"] = function.description
    if function.parameters is not None:
        spec["parameters"] = function.parameters
    return {"type": "function", "function": spec}


def _messages(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}
    converted: list[dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        converted.append(_message(message, i, tool_names))
    return converted


def _message(message: Message, i: int, tool_names: dict[str, str]) -> dict[str, Any]:
    role = "system" if message.role == "developer" else message.role
    out: dict[str, Any] = {"role": role, "content": ""}
    if isinstance(message.content, str):
        out["content"] = message.content
    elif message.content is not None:
        out["content"], images = _parts(message.content, i)
        if images:
            out["images"] = images
    if message.tool_calls:
        out["tool_calls"] = [
            _tool_call(call, f"messages[{i}].tool_calls[{k}]", k)
            for k, call in enumerate(message.tool_calls)
        ]
        tool_names.update((call.id, call.function.name) for call in message.tool_calls)
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
        name = tool_names.get(message.tool_call_id)
        if name is not None:
            out["tool_name"] = name
    return out


def _parts(parts: list[ContentPart], i: int) -> tuple[str, list[str]]:
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(parts):
        if isinstance(part, ImagePart):
            images.append(_image_base64(part, f"messages[{i}].content[{j}].image_url"))
        else:
            texts.append(part.text)
    return "\n".join(texts), images


def _image_base64(part: ImagePart, param: str) -> str:
    url = part.image_url.url
    if url.startswith(("http://", "https://")):
        raise UnsupportedInput(
            param=param,
            message="Image URLs are not supported; send the image inline as a base64 data URL "
            "(data:image/png;base64,...).",
        )
    prefix = _DATA_URL.match(url)
    payload = url[prefix.end() :] if prefix else ""
    if not payload or not _is_base64(payload):
        raise UnsupportedInput(
            param=param,
            message="Invalid image: expected a base64 data URL of a PNG, JPEG or WebP image "
            "(data:image/png;base64,...).",
        )
    return payload


def _is_base64(text: str) -> bool:
    try:
        b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _tool_call(call: MessageToolCall, param: str, index: int) -> dict[str, Any]:
    raw = call.function.arguments
    try:
        arguments = json.loads(raw) if raw.strip() else {}
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise UnsupportedInput(
            param=f"{param}.function.arguments",
            message="Tool call arguments must be a JSON object encoded as a string.",
        )
    return {
        "id": call.id,
        "function": {"index": index, "name": call.function.name, "arguments": arguments},
    }
