"""A merchant's webhook endpoint for tests: records raw bodies and headers, answers as told.

with WebhookReceiver() as receiver:
    ...MyFatoorahConfig(webhook_url=receiver.url)...
    [hook] = receiver.wait_for(1)
    assert signature_matches(hook.body(), secret, hook.signature)
"""

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from schema.myfatoorah import SIGNATURE_HEADER, load_body


@dataclass(frozen=True)
class ReceivedWebhook:
    path: str
    headers: dict[str, str]  # names in lower case
    raw: bytes

    @property
    def signature(self) -> str | None:
        return self.headers.get(SIGNATURE_HEADER.lower())

    def body(self) -> Any:
        return load_body(self.raw)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status = self.server.owner.record(ReceivedWebhook(self.path, headers, raw))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet in test output


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "WebhookReceiver"


class WebhookReceiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        self._lock = threading.Condition()
        self._received: list[ReceivedWebhook] = []
        self._statuses: deque[int] = deque()
        self._gate: threading.Event | None = None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks/myfatoorah"

    @property
    def received(self) -> list[ReceivedWebhook]:
        with self._lock:
            return list(self._received)

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (then 200 again)."""
        with self._lock:
            self._statuses.extend(statuses)

    def hold(self) -> threading.Event:
        """Keep every request waiting until the returned event is set (a slow merchant)."""
        self._gate = threading.Event()
        return self._gate

    def reset(self) -> None:
        """Forget what arrived and what was asked for (one receiver, many tests)."""
        if self._gate is not None:
            self._gate.set()
            self._gate = None
        with self._lock:
            self._received.clear()
            self._statuses.clear()

    def record(self, webhook: ReceivedWebhook) -> int:
        with self._lock:
            self._received.append(webhook)
            self._lock.notify_all()
            status = self._statuses.popleft() if self._statuses else 200
        gate = self._gate
        if gate is not None:
            gate.wait(10)
        return status

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedWebhook]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._received)} webhooks arrived, not {count}")
                self._lock.wait(left)
            return list(self._received)

    def start(self) -> str:
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> "WebhookReceiver":
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
