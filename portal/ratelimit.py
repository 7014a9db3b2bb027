"""Rate-limit decisions for the API, and the headers they put on every `/v1` response."""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker.limits import RateDecision, RateLimiter
from portal.exceptions import RateLimited
from portal.keys.service import Caller

STATE_KEY = "rate_limit_headers"


def _remember(request: Request, decision: RateDecision) -> None:
    setattr(request.state, STATE_KEY, decision.headers())


def enforce(request: Request, decision: RateDecision) -> None:
    """Put the decision's headers on the response; refuse the request with 429 if so."""
    _remember(request, decision)
    if not decision.allowed:
        raise RateLimited(
            f"Rate limit reached: {decision.limit} requests per minute for this account. "
            f"Retry in {decision.retry_after_s} s.",
            headers={"retry-after": str(decision.retry_after_s), **decision.headers()},
        )


async def peek(limiter: RateLimiter, request: Request, caller: Caller) -> None:
    _remember(request, await limiter.peek(caller.account_id, caller.requests_per_minute))


class RateLimitHeaders:
    """Adds the request's rate-limit headers to its response, whatever produced it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get(STATE_KEY) or {}
                if extra:
                    headers = list(message.get("headers", []))
                    present = {name.lower() for name, _ in headers}
                    for name, value in extra.items():
                        if name.encode() not in present:
                            headers.append((name.encode(), value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
