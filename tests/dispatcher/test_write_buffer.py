"""Requests through `WriteBufferedBackend` on real sockets: one write per request, a
large body still streamed in pieces, the answer and the connection's reuse unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import httpcore

from dispatcher.write_buffer import FLUSH_AT, SocketOption, WriteBufferedBackend


class RecordingStream(httpcore.AsyncNetworkStream):
    """The real socket stream, recording what reaches it write by write."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, writes: list[bytes]) -> None:
        self._stream = stream
        self.writes = writes

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 -- httpcore's interface
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 -- httpcore's interface
        self.writes.append(buffer)
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class RecordingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.real = httpcore.AnyIOBackend()
        self.writes: list[bytes] = []
        self.connections = 0

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connections += 1
        stream = await self.real.connect_tcp(host, port, timeout, local_address, socket_options)
        return RecordingStream(stream, self.writes)


class EchoServer:
    """Answers each request with its body's length; keeps the bodies it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None
        self._handlers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/api/chat"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await asyncio.wait_for(asyncio.gather(*self._handlers), timeout=5)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.append(task)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            self.bodies.append(await reader.readexactly(length))
            answer = str(length).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(answer), answer))
            await writer.drain()
        writer.close()
        await writer.wait_closed()


async def post(pool: httpcore.AsyncConnectionPool, url: str, content: object) -> bytes:
    headers = [("Content-Type", "application/json")]
    if isinstance(content, bytes):
        headers.append(("Content-Length", str(len(content))))
    response = await pool.request("POST", url, headers=headers, content=content)  # type: ignore[arg-type]
    assert response.status == 200
    return response.content


async def test_a_request_goes_out_in_one_write_and_the_connection_is_reused() -> None:
    recording = RecordingBackend()
    async with (
        EchoServer() as server,
        httpcore.AsyncConnectionPool(network_backend=WriteBufferedBackend(recording)) as pool,
    ):
        for body in (b'{"model": "llama3.2:3b"}', b'{"model": "qwen3:8b", "stream": true}'):
            assert await post(pool, server.url, body) == str(len(body)).encode()
    bodies = server.bodies
    assert bodies == [b'{"model": "llama3.2:3b"}', b'{"model": "qwen3:8b", "stream": true}']
    assert recording.connections == 1
    assert len(recording.writes) == 2  # without the buffer: head and body, twice
    for write, body in zip(recording.writes, bodies, strict=True):
        assert write.startswith(b"POST /api/chat HTTP/1.1\r\n")
        assert write.endswith(b"\r\n\r\n" + body)


async def test_a_large_streamed_body_is_written_in_pieces_as_it_comes() -> None:
    recording = RecordingBackend()
    piece = b"x" * (FLUSH_AT * 5 // 8)
    length = 4 * len(piece)

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield piece

    async with (
        EchoServer() as server,
        httpcore.AsyncConnectionPool(network_backend=WriteBufferedBackend(recording)) as pool,
    ):
        response = await pool.request(
            "POST", server.url, headers=[("Content-Length", str(length))], content=pieces()
        )
        assert response.content == str(length).encode()
    assert server.bodies == [piece * 4]
    # Two pieces reach FLUSH_AT: head + 2 pieces, then 2 pieces; nothing waits for the read.
    assert [len(w) for w in recording.writes][1:] == [2 * len(piece)]
    assert recording.writes[0].endswith(b"\r\n\r\n" + 2 * piece)
