"""Rendering `/api/chat` output the way Go's `json.Marshal` lays it out (compact, fixed order).

Intermediate content lines are formatted from a precomputed head, not built as dicts:
the benchmark compares the gateway against this server directly, so lines must be cheap.
"""

import json
import time
from dataclasses import dataclass
from typing import Any

from simulator.generation import Chunk, Plan

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
PROMPT_TOKEN_NS = 20_000
EVAL_TOKEN_MIN_NS = 1_000


def created_at() -> str:
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{nanos:09d}Z"


def message(content: str, thinking: str = "", tool_calls: Any = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        body["thinking"] = thinking
    if tool_calls:
        body["tool_calls"] = list(tool_calls)
    return body


@dataclass(frozen=True)
class Clock:
    """perf_counter_ns checkpoints, as ChatHandler takes them."""

    start: int
    loaded: int
    eval_start: int

    def metrics(self, plan: Plan) -> dict[str, int]:
        now = time.perf_counter_ns()
        values = {
            "load_duration": max(1, self.loaded - self.start),
            "prompt_eval_count": plan.prompt_eval_count,
            "prompt_eval_duration": plan.prompt_eval_count * PROMPT_TOKEN_NS,
            "eval_count": plan.eval_count,
            "eval_duration": max(now - self.eval_start, plan.eval_count * EVAL_TOKEN_MIN_NS),
        }
        parts = values["load_duration"] + values["prompt_eval_duration"] + values["eval_duration"]
        total = {"total_duration": max(now - self.start, parts)}
        # api.Metrics fields are omitempty: zero values are absent.
        return {key: value for key, value in (total | values).items() if value}


class LineWriter:
    def __init__(self, model: str, remote: dict[str, str]) -> None:
        head = '{"model":' + dumps(model)
        for key, value in remote.items():
            head += f',"{key}":{dumps(value)}'
        self._head = head + ',"created_at":"'

    def chunk(self, chunk: Chunk) -> bytes:
        if chunk.thinking or chunk.tool_calls:
            body = dumps(message(chunk.content, chunk.thinking, chunk.tool_calls))
        else:
            body = '{"role":"assistant","content":' + dumps(chunk.content) + "}"
        return f'{self._head}{created_at()}","message":{body},"done":false}}\n'.encode()

    def done(self, plan: Plan, clock: Clock) -> bytes:
        tail = dumps({"done_reason": plan.done_reason, **clock.metrics(plan)})
        content = dumps(plan.final_content)
        return (
            f'{self._head}{created_at()}","message":{{"role":"assistant","content":{content}}},'
            f'"done":true,{tail[1:]}\n'
        ).encode()

    def whole(self, plan: Plan, clock: Clock) -> bytes:
        """The `stream:false` body: content/thinking concatenated, tool calls accumulated."""
        chunks = plan.chunks
        content = "".join(c.content for c in chunks) + plan.final_content
        thinking = "".join(c.thinking for c in chunks)
        calls = [call for c in chunks for call in c.tool_calls]
        body = dumps(message(content, thinking, calls))
        tail = dumps({"done_reason": plan.done_reason, **clock.metrics(plan)})
        return f'{self._head}{created_at()}","message":{body},"done":true,{tail[1:]}'.encode()


def error_line(text: str) -> bytes:
    return dumps({"error": text}).encode() + b"\n"
