from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from portal.chat.chunks import (
    SSE_DONE,
    ChunkWriter,
    CompletionBuilder,
    error_payload,
    new_completion_id,
    sse_data,
    sse_frame,
)
from schema.messages import Delta, Done, Failed, ToolCall

DONE = Done(finish_reason="stop", prompt_tokens=7, completion_tokens=3)
WEATHER = ToolCall(id="call_ab12cd34", name="get_weather", arguments='{"city":"Kuwait"}')
TIME = ToolCall(id="call_zz", name="get_time", arguments="{}")


def writer(include_usage: bool = False) -> ChunkWriter:
    return ChunkWriter("chatcmpl-abc", 1_700_000_000, "llama3.2:3b", include_usage)


def stream_chunks(events: list[Delta | Done], include_usage: bool) -> list[dict[str, Any]]:
    w = writer(include_usage)
    chunks = [w.role_chunk()]
    for event in events:
        if isinstance(event, Delta):
            chunks.extend(w.delta_chunks(event))
        else:
            chunks.append(w.finish_chunk(event))
            if include_usage:
                chunks.append(w.usage_chunk(event))
    return chunks


def test_completion_ids_are_unique_and_shaped() -> None:
    ids = {new_completion_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"chatcmpl-[A-Za-z0-9]{24,}", i) for i in ids)


def test_role_chunk_shape() -> None:
    assert writer().role_chunk() == {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "llama3.2:3b",
        "system_fingerprint": "fp_resayil",
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
    }


def test_usage_null_on_every_chunk_only_with_include_usage() -> None:
    chunks = stream_chunks([Delta(content="hi"), DONE], include_usage=True)
    assert [c["usage"] for c in chunks[:-1]] == [None, None, None]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert all("usage" not in c for c in stream_chunks([Delta(content="hi"), DONE], False))


def test_delta_chunks_split_reasoning_content_and_tool_calls() -> None:
    chunks = writer().delta_chunks(Delta(thinking="hmm", content="ok", tool_calls=[WEATHER]))
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"reasoning": "hmm"},
        {"content": "ok"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_ab12cd34",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Kuwait"}'},
                }
            ]
        },
    ]
    assert writer().delta_chunks(Delta()) == []


def test_tool_call_indexes_count_across_the_stream() -> None:
    w = writer()
    first = w.delta_chunks(Delta(tool_calls=[WEATHER, TIME]))
    second = w.delta_chunks(Delta(tool_calls=[WEATHER.model_copy(update={"id": "call_3"})]))
    indexes = [tc["index"] for c in first + second for tc in c["choices"][0]["delta"]["tool_calls"]]
    assert indexes == [0, 1, 2]


def test_finish_chunk() -> None:
    chunk = writer().finish_chunk(
        Done(finish_reason="length", prompt_tokens=1, completion_tokens=2)
    )
    assert chunk["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    ]


def test_chunks_parse_as_openai_types() -> None:
    events: list[Delta | Done] = [
        Delta(thinking="because"),
        Delta(content="مرحبا"),
        Delta(tool_calls=[WEATHER]),
        Done(finish_reason="tool_calls", prompt_tokens=1, completion_tokens=2),
    ]
    parsed = [ChatCompletionChunk.model_validate(c) for c in stream_chunks(events, True)]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert parsed[1].choices[0].delta.model_extra == {"reasoning": "because"}
    assert parsed[2].choices[0].delta.content == "مرحبا"
    tool_call = parsed[3].choices[0].delta.tool_calls
    assert tool_call is not None and tool_call[0].function is not None
    assert tool_call[0].function.name == "get_weather"
    assert parsed[4].choices[0].finish_reason == "tool_calls"
    assert parsed[5].usage is not None and parsed[5].usage.total_tokens == 3


def test_error_payload_always_has_four_keys() -> None:
    failed = Failed(status=404, code="model_not_found", message="nope", error_type="x")
    assert error_payload(failed) == {
        "error": {"message": "nope", "type": "x", "param": None, "code": "model_not_found"}
    }
    with_param = Failed(status=400, code="c", message="m", param="messages[0]")
    assert error_payload(with_param)["error"]["param"] == "messages[0]"


def test_sse_serialisation_is_compact_utf8() -> None:
    assert sse_data({"a": "كويت", "b": [1, None]}) == '{"a":"كويت","b":[1,null]}'
    assert sse_frame({"a": 1}) == 'data: {"a":1}\n\n'
    assert SSE_DONE == "data: [DONE]\n\n"


def build(deltas: list[Delta], done: Done = DONE) -> dict[str, Any]:
    builder = CompletionBuilder("chatcmpl-abc", 1_700_000_000, "llama3.2:3b")
    for delta in deltas:
        builder.add(delta)
    return builder.build(done)


def test_completion_shape() -> None:
    assert build([Delta(content="Hel"), Delta(content="lo")]) == {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "llama3.2:3b",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        "system_fingerprint": "fp_resayil",
    }
    assert build([])["choices"][0]["message"]["content"] == ""


def test_completion_with_reasoning_and_tool_calls() -> None:
    done = Done(finish_reason="tool_calls", prompt_tokens=1, completion_tokens=1)
    body = build([Delta(thinking="a"), Delta(thinking="b", tool_calls=[WEATHER, TIME])], done)
    completion = ChatCompletion.model_validate(body)
    message = completion.choices[0].message
    assert message.content is None
    assert message.model_extra == {"reasoning": "ab"}
    assert message.tool_calls is not None
    assert [(c.id, c.type) for c in message.tool_calls] == [
        ("call_ab12cd34", "function"),
        ("call_zz", "function"),
    ]
    assert completion.choices[0].finish_reason == "tool_calls"
    with_text = build([Delta(content="calling", tool_calls=[TIME])], done)
    assert with_text["choices"][0]["message"]["content"] == "calling"


def sdk_client(body: str) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=body.encode(), headers={"content-type": "text/event-stream"}
        )

    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def test_openai_sdk_accumulates_our_stream() -> None:
    events: list[Delta | Done] = [
        Delta(content="It is "),
        Delta(content="hot."),
        Delta(tool_calls=[WEATHER]),
        Delta(tool_calls=[TIME]),
        Done(finish_reason="tool_calls", prompt_tokens=5, completion_tokens=4),
    ]
    body = "".join(sse_frame(c) for c in stream_chunks(events, True)) + SSE_DONE
    with (
        sdk_client(body) as client,
        client.chat.completions.stream(
            model="llama3.2:3b",
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        ) as stream,
    ):
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "It is hot."
    assert message.tool_calls is not None
    assert [c.function.name for c in message.tool_calls if c.type == "function"] == [
        "get_weather",
        "get_time",
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 9


def test_openai_sdk_raises_on_mid_stream_error() -> None:
    w = writer()
    failed = Failed(status=502, code="upstream_error", message="boom", after_output=True)
    frames = [w.role_chunk(), *w.delta_chunks(Delta(content="par")), error_payload(failed)]
    received: list[str | None] = []
    with sdk_client("".join(sse_frame(f) for f in frames)) as client:
        stream = client.chat.completions.create(
            model="llama3.2:3b", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                received.append(chunk.choices[0].delta.content)
    assert received == ["", "par"]
    assert caught.value.message == "boom"
    assert caught.value.code == "upstream_error"
    assert json.loads(json.dumps(caught.value.body)) == error_payload(failed)["error"]
