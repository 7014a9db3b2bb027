"""An SSE response that is running before its first event, its status line held back.

sse-starlette starts its task group (the body iterator, the disconnect watch) and sends
the status line at once. A relayed job's first event comes later, and an error known
before any output must still go out as a non-200 JSON answer. So the response is
entered as soon as the job is enqueued, while the dispatcher starts it (its setup is off
the way to the first token, and a client that leaves while its job is queued is noticed
at once), and the status line waits for the first body: then both go out together. A
body that ends before its first frame has refused the stream: its `refusal` goes out
instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

from sse_starlette import EventSourceResponse
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send


class HeldEventSourceResponse(EventSourceResponse):
    def __init__(
        self,
        body: Callable[[HeldEventSourceResponse], AsyncIterator[bytes]],
        *,
        headers: Mapping[str, str],
    ) -> None:
        self._refusal: Response | None = None
        # No ping task of its own: the body sends its own heartbeat comments.
        super().__init__(body(self), headers=headers, ping=0)

    def refuse(self, refusal: Response) -> None:
        """Answer `refusal` instead of the stream; the body then ends without a frame."""
        self._refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        held: Message | None = None
        answered = False

        async def send_when_first_body(message: Message) -> None:
            nonlocal held, answered
            if answered:
                return
            if message["type"] == "http.response.start":
                held = message
                return
            if held is not None:
                start, held = held, None
                if self._refusal is not None:
                    answered = True
                    await self._refusal(scope, receive, send)
                    return
                await send(start)
            await send(message)

        await super().__call__(scope, receive, send_when_first_body)
