"""What a chat request answers, decided up front as a `Plan` of chunks (no I/O here)."""

import json
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from simulator.request import ChatCall

_ID_ALPHABET = string.ascii_lowercase + string.digits
_JSON_PIECE = re.compile(r"\s*\S+")
THINKING_PIECES = ("think0", " think1", " think2", " think3")
TOOL_ARGUMENTS = {"city": "Tokyo"}


@dataclass(frozen=True)
class Chunk:
    content: str = ""
    thinking: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass
class Plan:
    chunks: list[Chunk]
    done_reason: str = "stop"
    # Carried by the done line (real runners put their last piece there).
    final_content: str = ""
    eval_count: int = 0
    prompt_eval_count: int = 1
    # "midstream" or "truncate": the stream breaks after `chunks` were sent.
    failure: str | None = None


def tool_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def count_prompt_tokens(call: ChatCall) -> int:
    words = sum(len(str(m.get("content") or "").split()) for m in call.messages)
    return max(1, words)


def answer_words(count: int) -> list[str]:
    return [f"tok{i}" if i == 0 else f" tok{i}" for i in range(count)]


def _sample(schema: Any, text: str) -> Any:
    if not isinstance(schema, dict):
        return text
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {key: _sample(sub, text) for key, sub in (schema.get("properties") or {}).items()}
    samples = {"array": [_sample(schema.get("items"), text)], "integer": 42, "number": 4.2}
    return samples.get(str(kind), True if kind == "boolean" else text)


def json_answer(format_: Any, count: int) -> list[str]:
    text = "".join(answer_words(count))
    value = _sample(format_, text) if isinstance(format_, dict) else None
    if not isinstance(value, dict) or not value:
        value = {"answer": text}
    return _JSON_PIECE.findall(json.dumps(value))


def echo_answer(call: ChatCall) -> list[str]:
    messages = call.messages
    tool_messages = [m for m in messages if m["role"] == "tool"]
    report = {
        "model": call.model,
        "options": call.options,
        "format": call.format,
        "think": call.think,
        "stream": call.stream,
        "images": sum(len(m.get("images") or []) for m in messages),
        "tools": call.tool_names(),
        "roles": [m["role"] for m in messages],
        "contents": [m.get("content") or "" for m in messages],
        "tool_names": [m.get("tool_name") for m in tool_messages],
        "tool_call_ids": [m.get("tool_call_id") for m in tool_messages],
        "tool_calls": [c for m in messages for c in m.get("tool_calls") or []],
        "keep_alive": call.keep_alive,
    }
    text = json.dumps(report)
    size = len(text) // 4 + 1
    return [text[i : i + size] for i in range(0, len(text), size)]


def _cut_at_stop(pieces: list[str], stops: list[str]) -> tuple[list[str], bool]:
    """Pieces up to the first stop string (excluded); the piece that completes it counts."""
    text = ""
    for index, piece in enumerate(pieces):
        hits = [pos for stop in stops if (pos := (text + piece).find(stop)) >= 0]
        if hits:
            kept = (text + piece)[: min(hits)][len(text) :]
            return [*pieces[:index], kept], True
        text += piece
    return pieces, False


def build_plan(call: ChatCall, default_tokens: int) -> Plan:
    directives = call.directives
    count = default_tokens if directives.tokens is None else directives.tokens
    thinking = list(THINKING_PIECES) if call.wants_thinking else []
    if directives.tool_call and call.tools:
        plan = _tool_call_plan(call.tool_names()[0], thinking)
    elif directives.echo:
        # Diagnostics stay whole: num_predict and stop do not cut the echo.
        plan = _content_plan(thinking, echo_answer(call), limit=None, stops=[])
    else:
        pieces = json_answer(call.format, count) if call.format else answer_words(count)
        plan = _content_plan(thinking, pieces, limit=call.num_predict, stops=call.stop)
    plan.prompt_eval_count = count_prompt_tokens(call)
    if directives.final_content and plan.chunks and plan.chunks[-1].content:
        plan.final_content = plan.chunks.pop().content
    if directives.error in ("midstream", "truncate"):
        plan.failure = directives.error
        del plan.chunks[max(1, len(plan.chunks) // 2) :]
    return plan


def _content_plan(
    thinking: list[str], content: list[str], *, limit: int | None, stops: list[str]
) -> Plan:
    done_reason = "stop"
    if limit is not None and limit < len(thinking) + len(content):
        done_reason = "length"
        thinking, content = thinking[:limit], content[: max(0, limit - len(thinking))]
    eval_count = len(thinking) + len(content)
    if stops:
        content, stopped = _cut_at_stop(content, stops)
        if stopped:
            done_reason, eval_count = "stop", len(thinking) + len(content)
    chunks = [Chunk(thinking=piece) for piece in thinking]
    chunks += [Chunk(content=piece) for piece in content if piece]
    return Plan(chunks=chunks, done_reason=done_reason, eval_count=eval_count)


def _tool_call_plan(name: str, thinking: list[str]) -> Plan:
    tool_call = {
        "id": tool_call_id(),
        "function": {"index": 0, "name": name, "arguments": dict(TOOL_ARGUMENTS)},
    }
    chunks = [Chunk(thinking=piece) for piece in thinking]
    chunks.append(Chunk(tool_calls=(tool_call,)))
    return Plan(chunks=chunks, eval_count=len(chunks))
