from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpcore
import httpx
import pytest

from dispatcher.ollama_client import stream_chat
from dispatcher.upstream_http import UpstreamHTTP
from schema.messages import Delta, Done, Failed, Started, ToolCall, decode_events, encode_events

BASE_URL = "http://ollama.test:11434/"
PAYLOAD: dict[str, Any] = {"model": "llama3.2:3b", "messages": [], "stream": True}
Event = Delta | Done | Failed


class FakeStream(httpx.AsyncByteStream):
    """An upstream body: byte chunks, then optionally an error or a hang; records closing."""

    def __init__(
        self, chunks: list[bytes], *, error: Exception | None = None, hang: bool = False
    ) -> None:
        self.chunks = chunks
        self.error = error
        self.hang = hang
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error
        if self.hang:
            await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed = True


def ndjson(*objs: dict[str, Any]) -> list[bytes]:
    return [json.dumps(obj).encode() + b"\n" for obj in objs]


def line(content: str = "", **message: Any) -> dict[str, Any]:
    return {
        "model": "llama3.2:3b",
        "created_at": "2025-07-07T20:22:19.184789Z",
        "message": {"role": "assistant", "content": content, **message},
        "done": False,
    }


def done(content: str = "", reason: str = "stop", **metrics: Any) -> dict[str, Any]:
    final = line(content)
    final.update(done=True, done_reason=reason, **metrics)
    return final


class HandlerPool(httpcore.AsyncConnectionPool):
    """The network edge: answers each request httpcore would send with `handler`'s response
    (httpx's request and response models, for readable tests)."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        super().__init__()
        self.handler = handler

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        assert isinstance(request.stream, AsyncIterable)
        body = b"".join([chunk async for chunk in request.stream])
        url = request.url
        sent = httpx.Request(
            request.method.decode(),
            f"{url.scheme.decode()}://{url.host.decode()}:{url.port}{url.target.decode()}",
            headers=request.headers,
            content=body,
        )
        response = self.handler(sent)
        stream = response.stream
        assert isinstance(stream, AsyncIterable)
        return httpcore.Response(response.status_code, headers=response.headers.raw, content=stream)


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> UpstreamHTTP:
    return UpstreamHTTP(HandlerPool(handler))


def responding(
    stream: FakeStream, status: int = 200, headers: dict[str, str] | None = None
) -> UpstreamHTTP:
    return client_for(lambda request: httpx.Response(status, stream=stream, headers=headers))


async def collect(client: UpstreamHTTP, **kwargs: Any) -> list[Event]:
    return [
        event async for event in stream_chat(client, base_url=BASE_URL, payload=PAYLOAD, **kwargs)
    ]


async def failure(client: UpstreamHTTP, **kwargs: Any) -> Failed:
    """The one event of a stream that fails before any output."""
    (event,) = await collect(client, **kwargs)
    assert isinstance(event, Failed)
    assert event.after_output is False
    return event


async def test_posts_payload_to_api_chat_with_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, stream=FakeStream(ndjson(done())))

    await collect(client_for(handler), headers={"Authorization": "Bearer k"})
    assert str(seen[0].url) == "http://ollama.test:11434/api/chat"
    assert json.loads(seen[0].content) == PAYLOAD
    assert seen[0].headers["authorization"] == "Bearer k"


async def test_stream_yields_deltas_then_done_including_final_content() -> None:
    stream = FakeStream(
        ndjson(
            line(thinking="hmm"),
            line("Hel"),
            line(""),
            line("lo", thinking="more"),
            done("!", prompt_eval_count=12, eval_count=3, total_duration=5),
        )
    )
    events = await collect(responding(stream))
    assert events == [
        Delta(thinking="hmm"),
        Delta(content="Hel"),
        Delta(content="lo", thinking="more"),
        Delta(content="!"),
        Done(finish_reason="stop", prompt_tokens=12, completion_tokens=3),
    ]
    assert stream.closed
    batch: list[Started | Delta | Done | Failed] = [*events]
    assert decode_events(encode_events(batch)) == events


async def test_lines_split_across_chunks_and_blank_lines() -> None:
    raw = b"".join(ndjson(line("a"), done("b"))).replace(b"\n", b"\n\r\n")
    events = await collect(responding(FakeStream([raw[:7], raw[7:30], raw[30:]])))
    assert events == [
        Delta(content="a"),
        Delta(content="b"),
        Done(finish_reason="stop", prompt_tokens=0, completion_tokens=0),
    ]


async def test_tool_calls_become_json_string_arguments_and_finish_tool_calls() -> None:
    call = {
        "id": "call_ab12cd34",
        "function": {"index": 0, "name": "w", "arguments": {"c": "كويت"}},
    }
    no_id = {"function": {"index": 1, "name": "ping", "arguments": {}}}
    stream = FakeStream(ndjson(line(tool_calls=[call]), line(tool_calls=[no_id]), done()))
    events = await collect(responding(stream))
    assert events[0] == Delta(
        tool_calls=[ToolCall(id="call_ab12cd34", name="w", arguments='{"c":"كويت"}')]
    )
    generated = events[1]
    assert isinstance(generated, Delta)
    assert generated.tool_calls[0].name == "ping"
    assert generated.tool_calls[0].arguments == "{}"
    assert generated.tool_calls[0].id.startswith("call_")
    assert len(generated.tool_calls[0].id) > len("call_") + 8
    assert events[2] == Done(finish_reason="tool_calls", prompt_tokens=0, completion_tokens=0)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "stop"), ("length", "length"), ("load", "stop"), (None, "stop")],
)
async def test_done_reason_mapping(reason: str | None, expected: str) -> None:
    final = done("x")
    final["done_reason"] = reason
    events = await collect(responding(FakeStream(ndjson(final))))
    assert events[-1] == Done(finish_reason=expected, prompt_tokens=0, completion_tokens=0)


async def test_length_with_tool_calls_stays_length() -> None:
    call = {"function": {"name": "w", "arguments": {}}}
    events = await collect(
        responding(FakeStream(ndjson(line(tool_calls=[call]), done(reason="length"))))
    )
    assert events[-1] == Done(finish_reason="length", prompt_tokens=0, completion_tokens=0)


@pytest.mark.parametrize(("before", "after_output"), [([], False), ([line("partial")], True)])
async def test_error_line_fails_the_stream(
    before: list[dict[str, Any]], after_output: bool
) -> None:
    stream = FakeStream(ndjson(*before, {"error": "model runner crashed"}, line("never")))
    events = await collect(responding(stream))
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert (failed.status, failed.code, failed.after_output) == (
        502,
        "upstream_error",
        after_output,
    )
    assert "model runner crashed" in failed.message
    assert Delta(content="never") not in events


async def test_stream_without_done_is_truncated() -> None:
    events = await collect(responding(FakeStream(ndjson(line("a")))))
    assert events[-1] == Failed(
        status=502,
        code="upstream_truncated",
        message="The upstream model stream ended unexpectedly",
        after_output=True,
    )


@pytest.mark.parametrize("bad", [b"not json\n", b"[1,2]\n", b'{"message": "text"}\n'])
async def test_malformed_line_is_upstream_error(bad: bytes) -> None:
    events = await collect(responding(FakeStream([bad, *ndjson(done())])))
    assert len(events) == 1
    failed = events[0]
    assert isinstance(failed, Failed)
    assert (failed.status, failed.code, failed.after_output) == (502, "upstream_error", False)


def error_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> UpstreamHTTP:
    return responding(FakeStream([body]), status=status, headers=headers)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"error":"model is required"}',
            (400, "upstream_bad_request", "invalid_request_error", None),
        ),
        (
            404,
            b'{"error":"model \'x\' not found"}',
            (404, "model_not_found", "invalid_request_error", None),
        ),
        (
            503,
            b'{"error":"server busy, please try again.  maximum pending requests exceeded"}',
            (503, "upstream_busy", "api_error", 1),
        ),
        (
            401,
            b'{"error":"unauthorized","signin_url":"https://ollama.com/connect?key=abc"}',
            (502, "cloud_unauthorized", "api_error", None),
        ),
        (
            403,
            b'{"error":"ollama cloud is disabled: remote model is unavailable"}',
            (502, "cloud_unavailable", "api_error", None),
        ),
        (
            429,
            b'{"error":"you\'ve reached your hourly usage limit"}',
            (429, "cloud_rate_limited", "api_error", 30),
        ),
        (499, b'{"error":"request canceled"}', (499, "cancelled", "api_error", None)),
        (
            500,
            b'{"error":"model runner has unexpectedly stopped"}',
            (502, "upstream_error", "api_error", None),
        ),
        (502, b"<html>Bad Gateway</html>", (502, "upstream_error", "api_error", None)),
    ],
)
async def test_error_statuses_map_before_output(
    status: int, body: bytes, expected: tuple[int, str, str, int | None]
) -> None:
    failed = await failure(error_response(status, body), client_model="my-model")
    assert (failed.status, failed.code, failed.error_type, failed.retry_after_s) == expected
    assert failed.message
    assert "signin" not in failed.message and "connect?" not in failed.message


async def test_messages_carry_the_useful_details() -> None:
    bad = await failure(error_response(400, b'{"error":"model is required"}'))
    missing = await failure(error_response(404, b"{}"), client_model="gpt-x")
    missing_default = await failure(error_response(404, b"{}"))
    crashed = await failure(error_response(500, b'{"error":"runner stopped"}'))
    proxy = await failure(error_response(502, b"Bad Gateway"))
    assert bad.message == "model is required"
    assert missing.message == "The model `gpt-x` does not exist or you do not have access to it."
    assert "`llama3.2:3b`" in missing_default.message
    assert "runner stopped" in crashed.message
    assert "Bad Gateway" in proxy.message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("12", 12),
        ("1.2", 2),
        ("0", 30),
        ("soon", 30),
        ("", 30),
        ("in 90s as an HTTP date", 90),
    ],
)
async def test_rate_limit_retry_after(header: str, expected: int) -> None:
    if header.startswith("in 90s"):
        header = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    failed = await failure(error_response(429, b"{}", {"Retry-After": header}))
    assert failed.retry_after_s is not None
    assert abs(failed.retry_after_s - expected) <= 1


@pytest.mark.parametrize(
    "error",
    [
        httpcore.ConnectError("refused"),
        httpcore.ConnectTimeout("slow"),
        httpcore.ReadTimeout("slow"),
        httpcore.UnsupportedProtocol("no scheme"),
    ],
)
async def test_transport_errors_before_output(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    failed = await failure(client_for(handler))
    assert (failed.status, failed.code, failed.retry_after_s) == (503, "upstream_unavailable", 5)


@pytest.mark.parametrize(
    ("error", "chunks", "after_output"),
    [
        (httpcore.RemoteProtocolError("peer closed"), ndjson(line("a")), True),
        (httpcore.ReadTimeout("stalled"), ndjson(line("")), False),
    ],
)
async def test_transport_errors_mid_stream(
    error: Exception, chunks: list[bytes], after_output: bool
) -> None:
    events = await collect(responding(FakeStream(chunks, error=error)))
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert (failed.status, failed.code, failed.after_output) == (
        503,
        "upstream_unavailable",
        after_output,
    )


async def test_closing_the_generator_closes_the_upstream_stream() -> None:
    stream = FakeStream(ndjson(line("a")), hang=True)
    events = stream_chat(responding(stream), base_url=BASE_URL, payload=PAYLOAD)
    async with contextlib.aclosing(events):
        assert await anext(events) == Delta(content="a")
        assert not stream.closed
    assert stream.closed


async def test_task_cancellation_closes_the_upstream_stream() -> None:
    stream = FakeStream(ndjson(line("a")), hang=True)
    started = asyncio.Event()

    async def consume(client: UpstreamHTTP) -> None:
        async with contextlib.aclosing(
            stream_chat(client, base_url=BASE_URL, payload=PAYLOAD)
        ) as events:
            async for _ in events:
                started.set()

    task = asyncio.create_task(consume(responding(stream)))
    await asyncio.wait_for(started.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.closed


@pytest.mark.parametrize(
    ("name", "direct"),
    [
        ("qwen3.5:cloud", "qwen3.5"),
        ("gpt-oss:20b:cloud", "gpt-oss:20b"),
        ("gpt-oss:120b-cloud", "gpt-oss:120b"),
        ("QWEN3.5:CLOUD", "QWEN3.5"),
        ("foo-cloud", "foo-cloud"),  # no tag: not a cloud name
        ("llama3.2:3b", "llama3.2:3b"),
    ],
)
def test_direct_cloud_upstream_drops_the_cloud_suffix(name: str, direct: str) -> None:
    from dispatcher.generation import Upstream

    assert Upstream("https://ollama.com", {}, direct_cloud=True).model_name(name) == direct
    assert Upstream("http://127.0.0.1:11434", {}).model_name(name) == name
