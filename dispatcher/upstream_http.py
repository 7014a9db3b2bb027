"""The dispatcher's HTTP connection to Ollama: an httpcore pool, used directly.

httpcore is the transport httpx itself runs on. The upstream call needs none of httpx's
client layers (request and response models, auth flows, redirects, cookies), and on the
hot path they cost about a fifth of a millisecond per request before the first token.
The pool the dispatcher uses is `UpstreamPool` (httpcore's interface, connections parsed
by httptools); tests may pass any httpcore pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpcore

# Everything httpcore raises for a connection that fails, stalls or speaks bad HTTP.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)
USER_AGENT = "resayil-dispatcher"


@dataclass(frozen=True)
class UpstreamHTTP:
    """A connection pool and the timeouts every upstream request is sent with."""

    pool: httpcore.AsyncConnectionPool
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 300.0

    @property
    def extensions(self) -> dict[str, object]:
        """httpcore's per-request `timeout` extension: a slow pool or write counts as a read."""
        read = self.read_timeout_s
        timeouts = {"connect": self.connect_timeout_s, "read": read, "write": read, "pool": read}
        return {"timeout": timeouts}


def request_headers(extra: Mapping[str, str] | None) -> list[tuple[str, str]]:
    """A JSON POST's headers (httpcore adds Host and Content-Length itself)."""
    headers = [("Content-Type", "application/json"), ("User-Agent", USER_AGENT)]
    if extra:
        headers.extend(extra.items())
    return headers


def response_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The response's headers by lower-case name (the last one wins)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
