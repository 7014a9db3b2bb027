"""The upstream connection on real sockets: what goes on the wire, reuse, and timeouts."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from dispatcher.ollama_client import stream_chat
from dispatcher.upstream_http import UpstreamHTTP, response_headers
from dispatcher.upstream_pool import UpstreamPool
from schema.messages import Delta, Done, Failed

PAYLOAD = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "مرحبا"}]}
ANSWER = (
    b'{"message":{"role":"assistant","content":"hi"},"done":false}\n'
    b'{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop",'
    b'"prompt_eval_count":3,"eval_count":1}\n'
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_posts_json_with_headers_and_reuses_the_connection(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    requests: list[tuple[bytes, bytes]] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while not reader.at_eof():
            try:
                requests.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                b"Content-Length: %d\r\n\r\n%b" % (len(ANSWER), ANSWER)
            )
            await writer.drain()
        writer.close()

    url = await serve(handler)
    async with UpstreamPool() as pool:
        client = UpstreamHTTP(pool)
        for _ in range(2):
            events = [
                event
                async for event in stream_chat(
                    client, base_url=url, payload=PAYLOAD, headers={"Authorization": "Bearer k"}
                )
            ]
            assert events == [
                Delta(content="hi"),
                Done(finish_reason="stop", prompt_tokens=3, completion_tokens=1),
            ]
    assert connections == 1
    head, body = requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/chat HTTP/1.1"
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
    assert headers["host"] == url.removeprefix("http://")
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer k"
    assert json.loads(body) == PAYLOAD


async def test_a_silent_server_times_out_as_unavailable(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.close()

    url = await serve(silent)
    async with UpstreamPool() as pool:
        started = time.monotonic()
        events = [
            event
            async for event in stream_chat(
                UpstreamHTTP(pool, read_timeout_s=0.2), base_url=url, payload=PAYLOAD
            )
        ]
    release.set()
    assert time.monotonic() - started < 5
    (failed,) = events
    assert isinstance(failed, Failed)
    assert (failed.status, failed.code, failed.after_output) == (503, "upstream_unavailable", False)


async def test_a_refused_connection_is_unavailable() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with UpstreamPool() as pool:
        events = [
            event
            async for event in stream_chat(
                UpstreamHTTP(pool), base_url=f"http://127.0.0.1:{port}", payload=PAYLOAD
            )
        ]
    (failed,) = events
    assert isinstance(failed, Failed)
    assert (failed.status, failed.code, failed.retry_after_s) == (503, "upstream_unavailable", 5)


def test_response_headers_by_lower_case_name() -> None:
    raw = [(b"Retry-After", b"7"), (b"content-type", b"application/json")]
    assert response_headers(raw) == {"retry-after": "7", "content-type": "application/json"}
