"""`UpstreamPool` on real sockets against hand-written HTTP/1.1 servers: bodies of every
framing, streaming as they come, reuse, early close, and the failures httpcore names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpcore
import pytest

from dispatcher.upstream_pool import READ_AHEAD, UpstreamPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON = [("Content-Type", "application/json")]
OK_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


class Server:
    """A TCP server running `handler` per connection; counts connections and EOFs."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed_by_client = asyncio.Event()
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/api/chat"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


async def body_of(
    pool: httpcore.AsyncConnectionPool, url: str, **extensions: object
) -> list[bytes]:
    async with pool.stream(
        "POST", url, headers=JSON, content=b"{}", extensions=extensions
    ) as response:
        assert response.status == 200
        return [part async for part in response.aiter_stream()]


async def answer_each(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: bytes
) -> None:
    while True:
        try:
            await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.write(reply)
        await writer.drain()


async def test_chunks_arrive_as_the_server_sends_them() -> None:
    next_chunk = asyncio.Event()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK_CHUNKED + chunk(b'{"n":1}\n'))
        await writer.drain()
        await next_chunk.wait()
        writer.write(chunk(b'{"n":2}\n') + b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with (
        Server(stream) as server,
        UpstreamPool() as pool,
        pool.stream("POST", server.url, headers=JSON, content=b"{}") as response,
    ):
        parts = response.aiter_stream()
        assert await anext(parts) == b'{"n":1}\n'  # before the second is even sent
        next_chunk.set()
        assert [part async for part in parts] == [b'{"n":2}\n']


@pytest.mark.parametrize(
    "reply",
    [
        OK_CHUNKED + chunk(b"hello ") + chunk(b"world") + b"0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
    ],
    ids=["chunked", "content-length"],
)
async def test_a_finished_response_returns_its_connection_for_reuse(reply: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_each(reader, writer, reply)

    async with Server(handler) as server, UpstreamPool() as pool:
        for _ in range(3):
            assert b"".join(await body_of(pool, server.url)) == b"hello world"
    assert server.connections == 1


async def test_connection_close_and_a_body_ended_by_it_are_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()

    async with Server(handler) as server, UpstreamPool() as pool:
        for _ in range(2):
            assert b"".join(await body_of(pool, server.url)) == b"until the end"
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_not_used() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()  # then closes: the keep-alive connection is gone

    async with Server(handler) as server, UpstreamPool() as pool:
        assert await body_of(pool, server.url) == [b"ok"]
        await asyncio.sleep(0.05)  # the close reaches the idle connection
        assert await body_of(pool, server.url) == [b"ok"]
    assert server.connections == 2


async def test_a_connection_that_answers_twice_is_not_reused() -> None:
    async def twice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_each(
            reader,
            writer,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra",
        )

    async with Server(twice) as server, UpstreamPool() as pool:
        for _ in range(2):
            assert await body_of(pool, server.url) == [b"ok"]
    assert server.connections == 2


async def test_leaving_a_response_early_closes_its_connection() -> None:
    left = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK_CHUNKED)
        while not reader.at_eof():
            writer.write(chunk(b"token\n"))
            await writer.drain()
            await asyncio.sleep(0.01)
        left.set()

    async with Server(endless) as server, UpstreamPool() as pool:
        async with pool.stream("POST", server.url, headers=JSON, content=b"{}") as response:
            assert await anext(response.aiter_stream()) == b"token\n"
        # What stops Ollama generating: the server sees the connection close.
        await asyncio.wait_for(left.wait(), 2)


async def test_a_response_cut_short_is_a_protocol_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK_CHUNKED + chunk(b"partial"))
        await writer.drain()

    async with Server(cut) as server, UpstreamPool() as pool:
        with pytest.raises(httpcore.RemoteProtocolError):
            await body_of(pool, server.url)


async def test_a_malformed_response_is_a_protocol_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with Server(garbage) as server, UpstreamPool() as pool:
        with pytest.raises(httpcore.RemoteProtocolError):
            await body_of(pool, server.url)


async def test_a_server_that_closes_without_answering_is_a_read_error() -> None:
    async def silent_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with Server(silent_close) as server, UpstreamPool() as pool:
        with pytest.raises(httpcore.ReadError):
            await body_of(pool, server.url)


async def test_a_stalled_body_times_out() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK_CHUNKED + chunk(b"first"))
        await writer.drain()
        await reader.read()

    async with Server(stall) as server, UpstreamPool() as pool:
        timeouts = {"connect": 5.0, "read": 0.2, "write": 5.0, "pool": 5.0}
        async with pool.stream(
            "POST", server.url, headers=JSON, content=b"{}", extensions={"timeout": timeouts}
        ) as response:
            parts = response.aiter_stream()
            assert await anext(parts) == b"first"
            with pytest.raises(httpcore.ReadTimeout):
                await anext(parts)


async def test_an_informational_response_is_skipped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_each(
            reader,
            writer,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
        )

    async with Server(handler) as server, UpstreamPool() as pool:
        assert await body_of(pool, server.url) == [b"done"]


async def test_a_large_body_read_slowly_arrives_whole() -> None:
    payload = bytes(range(256)) * (4 * READ_AHEAD // 256)

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_each(
            reader,
            writer,
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(payload), payload),
        )

    async def slowly(parts: AsyncIterator[bytes]) -> bytes:
        received = []
        async for part in parts:
            received.append(part)
            await asyncio.sleep(0)
        return b"".join(received)

    async with Server(big) as server, UpstreamPool() as pool:
        for _ in range(2):
            async with pool.stream("POST", server.url, headers=JSON, content=b"{}") as response:
                assert await slowly(response.aiter_stream()) == payload
    assert server.connections == 1


async def test_the_request_is_one_http_message_with_host_and_length() -> None:
    received: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readuntil(b"\r\n\r\n"))
        received.append(await reader.readexactly(len(b'{"a": "\xd9\x85"}')))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with Server(record) as server, UpstreamPool() as pool:
        response = await pool.request(
            "POST", server.url, headers=JSON, content='{"a": "م"}'.encode()
        )
        assert response.status == 204 and response.content == b""
    head, body = received
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api/chat HTTP/1.1"
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if line)}
    assert headers["host"] == server.url.removeprefix("http://").removesuffix("/api/chat")
    assert headers["content-length"] == str(len(body))
    assert body == '{"a": "م"}'.encode()
