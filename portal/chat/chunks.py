"""OpenAI Chat Completions wire output, built from the dispatcher's events.

    ChunkWriter          one streamed response: role, delta, finish and usage chunks
    CompletionBuilder    one non-stream response: accumulates deltas into `chat.completion`
    error_payload        OpenAI's error body; the same dict goes in a non-200 JSON response
                         or, after the first byte, in an SSE `data:` line

Reasoning goes out under `reasoning` (as Ollama's OpenAI endpoint and OpenRouter send it);
the openai SDK keeps unknown keys, so `delta.model_extra["reasoning"]` reads it.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

import orjson

from schema.messages import Delta, Done, Failed, ToolCall

SYSTEM_FINGERPRINT = "fp_resayil"
REASONING_KEY = "reasoning"
SSE_DONE = "data: [DONE]\n\n"

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 29  # as OpenAI's own chatcmpl- ids


def new_completion_id() -> str:
    # One read of the OS's randomness, not one per character. The modulo's slight bias
    # is harmless: an id must be unique (29 characters, over 170 bits), not uniform.
    return "chatcmpl-" + "".join(
        _ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in secrets.token_bytes(_ID_LENGTH)
    )


def sse_data(obj: dict[str, Any]) -> str:
    """The compact JSON text for an SSE `data:` field."""
    return orjson.dumps(obj).decode()  # compact, UTF-8 as is: like json.dumps(ensure_ascii=False)


def sse_frame(obj: dict[str, Any]) -> str:
    """One whole SSE event: `data: <json>` and the blank line that dispatches it."""
    return f"data: {sse_data(obj)}\n\n"


def error_payload(failed: Failed) -> dict[str, Any]:
    return {
        "error": {
            "message": failed.message,
            "type": failed.error_type,
            "param": failed.param,
            "code": failed.code,
        }
    }


def usage_dict(done: Done) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


class ChunkWriter:
    """Formats the `chat.completion.chunk` objects of one stream (same id and created)."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = model
        self.include_usage = include_usage
        self._tool_calls_sent = 0

    def role_chunk(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": ""})

    def delta_chunks(self, delta: Delta) -> list[dict[str, Any]]:
        """Reasoning, content and tool calls each in their own chunk, in that order."""
        chunks: list[dict[str, Any]] = []
        if delta.thinking:
            chunks.append(self._chunk({REASONING_KEY: delta.thinking}))
        if delta.content:
            chunks.append(self._chunk({"content": delta.content}))
        if delta.tool_calls:
            calls = [self._tool_call_delta(call) for call in delta.tool_calls]
            chunks.append(self._chunk({"tool_calls": calls}))
        return chunks

    def finish_chunk(self, done: Done) -> dict[str, Any]:
        return self._chunk({}, finish_reason=done.finish_reason)

    def usage_chunk(self, done: Done) -> dict[str, Any]:
        chunk = self._base()
        chunk["choices"] = []
        chunk["usage"] = usage_dict(done)
        return chunk

    def _tool_call_delta(self, call: ToolCall) -> dict[str, Any]:
        # Ollama sends each call whole, so one delta carries id, name and all the arguments,
        # and the call's position in the stream is its index.
        index = self._tool_calls_sent
        self._tool_calls_sent += 1
        return {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk = self._base()
        chunk["choices"] = [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ]
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _base(self) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }


class CompletionBuilder:
    """Accumulates the deltas of a non-stream request into one `chat.completion` body."""

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = model
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: list[ToolCall] = []

    def add(self, delta: Delta) -> None:
        if delta.content:
            self._content.append(delta.content)
        if delta.thinking:
            self._reasoning.append(delta.thinking)
        self._tool_calls.extend(delta.tool_calls)

    def build(self, done: Done) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": self._message(),
                    "logprobs": None,
                    "finish_reason": done.finish_reason,
                }
            ],
            "usage": usage_dict(done),
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def _message(self) -> dict[str, Any]:
        content = "".join(self._content)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if self._tool_calls and not content else content,
            "refusal": None,
            "annotations": [],
        }
        if self._reasoning:
            message[REASONING_KEY] = "".join(self._reasoning)
        if self._tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self._tool_calls
            ]
        return message
