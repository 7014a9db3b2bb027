"""The official openai client, end to end: API -> Redis -> dispatcher -> simulator."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai

from tests.stack import Stack

ClientFor = Callable[..., openai.OpenAI]
HELLO = [{"role": "user", "content": "hello there"}]


def test_non_stream_completion(stack: Stack, client_for: ClientFor) -> None:
    account = stack.new_account(credits=10)
    raw = client_for(account.key).chat.completions.with_raw_response.create(
        model="llama3.2:3b", messages=HELLO
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "llama3.2:3b"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content.startswith("tok0 tok1")
    assert completion.usage is not None and completion.usage.completion_tokens == 32
    assert completion.usage.prompt_tokens > 0
    assert raw.headers["x-resayil-served-by"] == "local"
    assert "x-resayil-queue-wait-ms" in raw.headers
    rows = stack.wait_usage(account.account_id, 1)
    assert [(r.status, r.credits_charged, r.completion_tokens) for r in rows] == [("ok", 1, 32)]
    assert stack.balance(account.account_id) == 9 == stack.ledger_sum(account.account_id)


def test_stream_completion_with_usage(stack: Stack, client_for: ClientFor) -> None:
    account = stack.new_account(credits=10)
    chunks = list(
        client_for(account.key).chat.completions.create(
            model="llama3.2:3b",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.split() == [f"tok{i}" for i in range(32)]
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 32
    assert stack.wait_usage(account.account_id, 1)[0].status == "ok"


def test_completion_ids_are_unique(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(credits=10).key)
    ids = {
        client.chat.completions.create(model="smollm2:135m", messages=HELLO).id for _ in range(5)
    }
    assert len(ids) == 5


def test_request_translation_reaches_ollama(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(credits=10).key)
    pixel = (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
        "2mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    completion = client.chat.completions.create(
        model="llama3.2:3b",
        messages=[
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this? [[sim:echo]]"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
                ],
            },
        ],
        max_completion_tokens=77,
        temperature=0.3,
        top_p=0.9,
        seed=7,
        stop=["END"],
        response_format={"type": "json_object"},
    )
    echoed = json.loads(completion.choices[0].message.content or "")
    assert echoed["options"]["num_predict"] == 77
    assert echoed["options"]["temperature"] == 0.3
    assert echoed["options"]["top_p"] == 0.9
    assert echoed["options"]["seed"] == 7
    assert echoed["options"]["stop"] == ["END"]
    assert echoed["format"] == "json"
    assert echoed["images"] == 1
    assert echoed["roles"] == ["system", "user"]


def test_tool_calls_both_ways(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(credits=10).key)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    first = client.chat.completions.create(
        model="llama3.2:3b",
        messages=[{"role": "user", "content": "weather? [[sim:tool_call]]"}],
        tools=tools,  # type: ignore[arg-type]
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Tokyo"}
    second = client.chat.completions.create(
        model="llama3.2:3b",
        messages=[
            {"role": "user", "content": "weather? [[sim:echo]]"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=tools,  # type: ignore[arg-type]
    )
    echoed = json.loads(second.choices[0].message.content or "")
    assert echoed["tool_names"][-1] == "get_weather"
    assert echoed["tool_calls"][0]["function"]["arguments"] == {"city": "Tokyo"}


def test_length_and_stop_finish_reasons(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(credits=10).key)
    limited = client.chat.completions.create(model="llama3.2:3b", messages=HELLO, max_tokens=5)
    assert limited.choices[0].finish_reason == "length"
    assert limited.usage is not None and limited.usage.completion_tokens == 5
    stopped = client.chat.completions.create(model="llama3.2:3b", messages=HELLO, stop="tok3")
    assert stopped.choices[0].finish_reason == "stop"
    assert "tok3" not in (stopped.choices[0].message.content or "")


def test_final_done_line_content_is_kept(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(credits=10).key)
    completion = client.chat.completions.create(
        model="llama3.2:3b", messages=[{"role": "user", "content": "x [[sim:final_content]]"}]
    )
    assert (completion.choices[0].message.content or "").split() == [f"tok{i}" for i in range(32)]
