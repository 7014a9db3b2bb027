"""Delivering webhooks: retries, duplicates, holding them back, and a log of every attempt."""

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from schema.myfatoorah import SIGNATURE_HEADER
from simulator.myfatoorah.config import MyFatoorahConfig
from simulator.myfatoorah.webhook_bodies import WebhookEvent

ReleaseOrder = Literal["sent", "reverse"]


@dataclass(frozen=True)
class Delivery:
    """One HTTP attempt; `status_code` is None when the connection failed."""

    reference: str
    attempt: int
    url: str
    body: str
    signature: str
    status_code: int | None
    error: str | None
    forged: bool
    at: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class WebhookSender:
    def __init__(self, config: Callable[[], MyFatoorahConfig]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._held: list[WebhookEvent] = []
        self._log: list[Delivery] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._log)

    @property
    def held(self) -> list[WebhookEvent]:
        with self._lock:
            return list(self._held)

    def submit(self, events: Iterable[WebhookEvent]) -> None:
        """Send in the background (the redirect must not wait), or hold them back."""
        config = self._config()
        copies = [event for event in events for _ in range(config.duplicate_webhooks)]
        if not copies or not config.webhook_url:
            return
        with self._lock:
            if config.hold_webhooks:
                self._held.extend(copies)
                return
            self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(
                target=self.deliver, args=(copies,), name="myfatoorah-webhooks", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def release(self, order: ReleaseOrder = "sent") -> list[Delivery]:
        """Deliver the held events now, in this thread; the last attempt of each."""
        with self._lock:
            events, self._held = self._held, []
        return self.deliver(reversed(events) if order == "reverse" else events)

    def deliver(self, events: Iterable[WebhookEvent]) -> list[Delivery]:
        config = self._config()
        if not config.webhook_url:
            return []
        with httpx.Client(timeout=config.webhook_timeout_s) as client:
            return [self._deliver_one(client, config, event) for event in events]

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait for background deliveries (retries included); False if some still run."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()  # cuts retry waits short
        self.wait(timeout)

    def reset(self) -> None:
        """Cut running deliveries short, then forget the log and the held events."""
        self.stop()
        self._stopping.clear()
        with self._lock:
            self._log.clear()
            self._held.clear()

    def _deliver_one(
        self, client: httpx.Client, config: MyFatoorahConfig, event: WebhookEvent
    ) -> Delivery:
        url = config.webhook_url or ""
        delivery = self._attempt(client, url, event, 1)
        for attempt in range(2, config.delivery_attempts + 1):
            if delivery.ok or self._stopping.wait(config.webhook_retry_delay_s):
                break
            delivery = self._attempt(client, url, event, attempt)
        return delivery

    def _attempt(
        self, client: httpx.Client, url: str, event: WebhookEvent, attempt: int
    ) -> Delivery:
        raw = event.raw
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: event.signature}
        status: int | None = None
        error: str | None = None
        try:
            status = client.post(url, content=raw, headers=headers).status_code
        except Exception as exc:  # any failure (refused, timeout, bad URL) is a failed attempt
            error = f"{type(exc).__name__}: {exc}"
        delivery = Delivery(
            reference=event.reference,
            attempt=attempt,
            url=url,
            body=raw.decode(),
            signature=event.signature,
            status_code=status,
            error=error,
            forged=event.forged,
            at=time.time(),
        )
        with self._lock:
            self._log.append(delivery)
        return delivery
