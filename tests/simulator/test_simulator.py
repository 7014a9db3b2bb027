"""The simulator's wire shapes, read back through the official `ollama` client."""

import base64
import json
import re
from typing import Any

import httpx
import ollama
import pytest

MODEL = "llama3.2:3b"
ANSWER = " ".join(f"tok{i}" for i in range(32))
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def user(text: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text, **extra}]


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_root_and_version(http: httpx.Client) -> None:
    root = http.get("/")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert root.headers["content-type"].startswith("text/plain")
    assert http.head("/").status_code == 200
    assert http.get("/api/version").json() == {"version": "0.33.0"}
    assert http.get("/api/nothing").status_code == 404


def test_list_shows_seed_models_with_details(client: ollama.Client, http: httpx.Client) -> None:
    names = [m.model for m in client.list().models]
    assert {"llama3.2:3b", "qwen3-30b-40k:latest", "Qwen3-VL-32B:latest"} <= set(names)
    raw = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
    local = raw["llama3.2:3b"]
    assert set(local["details"]) == {
        "parent_model",
        "format",
        "family",
        "families",
        "parameter_size",
        "quantization_level",
    }
    assert re.fullmatch(r"[0-9a-f]{64}", local["digest"])
    assert raw["qwen3.5:cloud"]["remote_model"] == "qwen3.5"


def test_chat_non_stream(client: ollama.Client, http: httpx.Client) -> None:
    response = client.chat(model=MODEL, messages=user("say something nice"), stream=False)
    assert response.message.content == ANSWER
    assert (response.done, response.done_reason, response.eval_count) == (True, "stop", 32)
    assert response.prompt_eval_count == 3
    raw = http.post("/api/chat", json={"model": MODEL, "messages": user("x"), "stream": False})
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert all(raw.json()[key] > 0 for key in METRICS)


def test_chat_stream_chunks_then_done_line(client: ollama.Client, http: httpx.Client) -> None:
    parts = list(client.chat(model=MODEL, messages=user("hello"), stream=True))
    *chunks, done = parts
    assert [c.message.content for c in chunks] == ["tok0", *(f" tok{i}" for i in range(1, 32))]
    assert not any(c.done for c in chunks) and all(c.eval_count is None for c in chunks)
    assert (done.done, done.done_reason, done.message.content) == (True, "stop", "")
    assert done.eval_count == len(chunks)
    assert all(getattr(done, key) for key in METRICS)
    raw = http.post("/api/chat", json={"model": MODEL, "messages": user("hi")})
    assert raw.headers["content-type"] == "application/x-ndjson"
    assert ndjson(raw)[0]["created_at"].endswith("Z")


def test_final_content_rides_on_done_line(client: ollama.Client) -> None:
    *chunks, done = client.chat(
        model=MODEL, messages=user("hi [[sim:tokens=3,final_content]]"), stream=True
    )
    assert [c.message.content for c in chunks] == ["tok0", " tok1"]
    assert (done.message.content, done.eval_count) == (" tok2", 3)
    whole = client.chat(model=MODEL, messages=user("hi [[sim:tokens=3,final_content]]"))
    assert whole.message.content == "tok0 tok1 tok2"


def test_ps_lists_loaded_models(client: ollama.Client) -> None:
    assert client.ps().models == []
    client.chat(model=MODEL, messages=user("hi"), keep_alive="10m")
    client.chat(model="qwen3.5:cloud", messages=user("hi"))
    (loaded,) = client.ps().models
    assert (loaded.model, loaded.context_length) == (MODEL, 4096)
    assert loaded.expires_at is not None and loaded.size_vram


def test_show(client: ollama.Client, http: httpx.Client) -> None:
    shown = client.show("qwen3-30b-40k")
    assert shown.capabilities == ["completion", "tools", "thinking"]
    assert shown.details is not None and shown.details.family == "qwen3moe"
    assert shown.modelinfo is not None and shown.modelinfo["qwen3moe.context_length"] == 40960
    assert http.post("/api/show", json={"name": MODEL}).status_code == 200
    missing = http.post("/api/show", json={})
    assert (missing.status_code, missing.json()) == (400, {"error": "model is required"})
    with pytest.raises(ollama.ResponseError) as error:
        client.show("nope:1b")
    assert error.value.status_code == 404
    assert error.value.error == "model 'nope:1b' not found"


def test_unknown_model_is_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="missing-model", messages=user("hi"))
    assert (error.value.status_code, error.value.error) == (404, "model 'missing-model' not found")


@pytest.mark.parametrize(
    ("name", "remote"),
    [
        ("kimi-k2.5:cloud", "kimi-k2.5"),
        ("gpt-oss:120b-cloud", "gpt-oss:120b"),
        ("gpt-oss:20b:CLOUD", "gpt-oss:20b"),
    ],
)
def test_any_cloud_name_is_proxied(http: httpx.Client, name: str, remote: str) -> None:
    body = {"model": name, "messages": user("hi"), "stream": False}
    answer = http.post("/api/chat", json=body).json()
    assert (answer["model"], answer["remote_host"]) == (name, "https://ollama.com:443")
    assert answer["remote_model"] == remote


def test_request_validation(http: httpx.Client) -> None:
    def error(body: Any) -> tuple[int, str]:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = http.post("/api/chat", content=content)
        return response.status_code, response.json()["error"]

    assert error(b"") == (400, "missing request body")
    assert error(b"{nope")[0] == 400
    assert error({"messages": user("hi")}) == (400, "model is required")
    assert error({"model": "x:local:cloud"}) == (400, "use either :local or :cloud, not both")
    assert error({"model": MODEL, "messages": user("hi", images=["not base64!"])})[0] == 400
    assert error({"model": MODEL, "messages": user("hi"), "think": True}) == (
        400,
        f'"{MODEL}" does not support thinking',
    )
    assert error({"model": "bge-m3", "messages": user("hi")}) == (
        400,
        '"bge-m3" does not support chat',
    )
    assert error({"model": MODEL, "messages": user("[[sim:bogus]]")})[0] == 400
    tool_call = {"function": {"name": "f", "arguments": '{"a": 1}'}}
    history = [{"role": "assistant", "content": "", "tool_calls": [tool_call]}]
    assert error({"model": MODEL, "messages": history})[0] == 400


def test_empty_messages_load_and_unload(http: httpx.Client) -> None:
    loaded = http.post("/api/chat", json={"model": MODEL, "messages": []}).json()
    assert (loaded["done"], loaded["done_reason"]) == (True, "load")
    assert [m["name"] for m in http.get("/api/ps").json()["models"]] == [MODEL]
    unloaded = http.post("/api/chat", json={"model": MODEL, "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload"
    assert http.get("/api/ps").json()["models"] == []


def test_num_predict_gives_length(client: ollama.Client) -> None:
    response = client.chat(model=MODEL, messages=user("hi"), options={"num_predict": 5})
    assert (response.done_reason, response.eval_count) == ("length", 5)
    assert response.message.content == "tok0 tok1 tok2 tok3 tok4"
    longer = client.chat(
        model=MODEL, messages=user("hi [[sim:tokens=3]]"), options={"num_predict": 9}
    )
    assert (longer.done_reason, longer.eval_count) == ("stop", 3)


def test_stop_strings_truncate_output(client: ollama.Client) -> None:
    response = client.chat(model=MODEL, messages=user("hi"), options={"stop": ["tok3", "zzz"]})
    assert (response.message.content, response.done_reason) == ("tok0 tok1 tok2 ", "stop")
    streamed = client.chat(
        model=MODEL, messages=user("hi"), options={"stop": [" tok2"]}, stream=True
    )
    assert "".join(c.message.content or "" for c in streamed) == "tok0 tok1"


def test_tool_call_shape(client: ollama.Client, http: httpx.Client) -> None:
    messages = user("weather? [[sim:tool_call]]")
    body = {"model": MODEL, "messages": messages, "tools": [WEATHER_TOOL]}
    *chunks, done = ndjson(http.post("/api/chat", json=body))
    (call,) = chunks[-1]["message"]["tool_calls"]
    assert re.fullmatch(r"call_[a-z0-9]{8}", call["id"])
    assert call["function"] == {"index": 0, "name": "get_weather", "arguments": {"city": "Tokyo"}}
    assert chunks[-1]["message"]["content"] == ""
    assert done["done_reason"] == "stop"
    whole = client.chat(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert whole.message.tool_calls is not None
    assert whole.message.tool_calls[0].function.arguments == {"city": "Tokyo"}


def test_thinking_streams_before_content(client: ollama.Client) -> None:
    parts = list(client.chat(model=MODEL, messages=user("hi [[sim:think,tokens=2]]"), stream=True))
    kinds = ["thinking" if p.message.thinking else "content" for p in parts[:-1]]
    assert kinds == ["thinking"] * 4 + ["content"] * 2
    whole = client.chat(model="qwen3-30b-40k", messages=user("hi [[sim:tokens=2]]"), think=True)
    assert (whole.message.thinking, whole.message.content) == (
        "think0 think1 think2 think3",
        "tok0 tok1",
    )
    assert whole.eval_count == 6
    plain = client.chat(model="qwen3-30b-40k", messages=user("hi [[sim:tokens=2]]"), think=False)
    assert plain.message.thinking is None


def test_format_json_and_schema(client: ollama.Client) -> None:
    response = client.chat(model=MODEL, messages=user("hi [[sim:tokens=4]]"), format="json")
    assert json.loads(response.message.content or "") == {"answer": "tok0 tok1 tok2 tok3"}
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    }
    streamed = client.chat(model=MODEL, messages=user("hi"), format=schema, stream=True)
    pieces = [c.message.content or "" for c in streamed]
    assert len(pieces) > 3
    assert set(json.loads("".join(pieces))) == {"city", "days"}


def test_echo_reports_what_arrived(client: ollama.Client) -> None:
    image = base64.b64encode(b"\x89PNG fake").decode()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "look", "images": [image]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        {"role": "user", "content": "and now? [[sim:echo]]"},
    ]
    options: dict[str, Any] = {"temperature": 0.2, "num_predict": 3, "stop": ["x"]}
    streamed = client.chat(
        model=MODEL,
        messages=messages,
        options=options,
        tools=[WEATHER_TOOL],
        stream=True,
        keep_alive="1m",
    )
    report = json.loads("".join(c.message.content or "" for c in streamed))
    assert report["options"] == options
    assert (report["images"], report["tools"], report["keep_alive"]) == (1, ["get_weather"], "1m")
    assert report["roles"] == ["system", "user", "assistant", "tool", "user"]
    assert report["tool_names"] == ["get_weather"]
    assert report["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}
