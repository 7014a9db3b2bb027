from __future__ import annotations

import base64
from typing import Any

import pytest

from schema.ollama_chat import UnsupportedInput, to_ollama_chat, validate_translatable
from schema.openai import ChatCompletionRequest

PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def make_request(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("model", "llama3.2:3b")
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return ChatCompletionRequest.model_validate(fields)


def translate(**fields: Any) -> dict[str, Any]:
    return to_ollama_chat(make_request(**fields), upstream_model="llama3.2:3b-q4")


def test_minimal_body_streams_and_forces_no_defaults() -> None:
    body = translate()
    assert body == {
        "model": "llama3.2:3b-q4",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }


def test_non_stream_request_still_streams_upstream() -> None:
    assert translate(stream=False)["stream"] is True


@pytest.mark.parametrize(
    ("fields", "num_predict"),
    [
        ({"max_tokens": 10}, 10),
        ({"max_completion_tokens": 20}, 20),
        ({"max_tokens": 10, "max_completion_tokens": 20}, 20),
    ],
)
def test_output_limit_becomes_num_predict(fields: dict[str, Any], num_predict: int) -> None:
    assert translate(**fields)["options"] == {"num_predict": num_predict}


@pytest.mark.parametrize(("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
def test_stop_is_always_a_list(stop: str | list[str], expected: list[str]) -> None:
    assert translate(stop=stop)["options"] == {"stop": expected}


def test_sampling_options_passed_only_when_given() -> None:
    body = translate(temperature=0, top_p=0.5, seed=7, frequency_penalty=0.1, presence_penalty=-1)
    assert body["options"] == {
        "temperature": 0,
        "top_p": 0.5,
        "seed": 7,
        "frequency_penalty": 0.1,
        "presence_penalty": -1,
    }
    assert "options" not in translate(temperature=None)


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, "json"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            {"type": "object"},
        ),
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "json"),
    ],
)
def test_response_format_becomes_format(response_format: dict[str, Any], expected: Any) -> None:
    assert translate(response_format=response_format)["format"] == expected


def test_text_response_format_sends_nothing() -> None:
    assert "format" not in translate(response_format={"type": "text"})


def test_developer_role_becomes_system() -> None:
    body = translate(messages=[{"role": "developer", "content": "be brief"}])
    assert body["messages"] == [{"role": "system", "content": "be brief"}]


def test_text_parts_join_and_data_url_images_become_bare_base64() -> None:
    content = [
        {"type": "text", "text": "first"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "text", "text": "second"},
        {"type": "image_url", "image_url": {"url": f"data:image/JPEG;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": f"data:;base64,{PNG_B64}"}},
    ]
    body = translate(messages=[{"role": "user", "content": content}])
    assert body["messages"] == [
        {"role": "user", "content": "first\nsecond", "images": [PNG_B64, PNG_B64, PNG_B64]}
    ]


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "http://example.com/cat.png",
        f"data:image/gif;base64,{PNG_B64}",
        f"data:image/png,{PNG_B64}",
        "data:image/png;base64,",
        "data:image/png;base64,not base64!",
        "file:///etc/passwd",
    ],
)
def test_unsupported_images_name_the_part(url: str) -> None:
    content = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    request = make_request(
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": content}]
    )
    with pytest.raises(UnsupportedInput) as caught:
        validate_translatable(request)
    assert caught.value.param == "messages[1].content[1].image_url"
    assert caught.value.message
    with pytest.raises(UnsupportedInput):
        to_ollama_chat(request, upstream_model="m")


def test_validate_translatable_accepts_good_request() -> None:
    validate_translatable(make_request())


def tool_round_trip() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Kuwait"}'},
                },
                {"id": "call_2", "function": {"name": "get_time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_1", "content": "40C"},
        {"role": "tool", "tool_call_id": "call_unknown", "content": "?"},
    ]


def test_assistant_tool_calls_get_object_arguments_and_tool_names() -> None:
    messages = translate(messages=tool_round_trip())["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Kuwait"}},
            },
            {"id": "call_2", "function": {"index": 1, "name": "get_time", "arguments": {}}},
        ],
    }
    assert messages[2] == {
        "role": "tool",
        "content": "12:00",
        "tool_call_id": "call_2",
        "tool_name": "get_time",
    }
    assert messages[3]["tool_name"] == "get_weather"
    assert "tool_name" not in messages[4]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"'])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    messages = tool_round_trip()
    messages[1]["tool_calls"][1]["function"]["arguments"] = arguments
    request = make_request(messages=messages)
    with pytest.raises(UnsupportedInput) as caught:
        validate_translatable(request)
    assert caught.value.param == "messages[1].tool_calls[1].function.arguments"


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "default": None}},
                "required": ["city"],
            },
        },
    },
    {"type": "function", "function": {"name": "ping"}},
]


def test_tools_pass_through_in_openai_shape() -> None:
    assert translate(tools=TOOLS)["tools"] == [
        TOOLS[0],
        {"type": "function", "function": {"name": "ping"}},
    ]


def test_tool_choice_none_withholds_tools() -> None:
    assert "tools" not in translate(tools=TOOLS, tool_choice="none")
    assert "tools" in translate(tools=TOOLS, tool_choice="auto")
