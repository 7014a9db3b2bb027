"""Annotated dependencies: what a route needs, resolved from the app's state."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from broker.auth_cache import AuthProof
from broker.sessions import WebSession
from portal.exceptions import AuthenticationFailed, DatabaseUnavailable, PermissionDenied
from portal.keys.service import Caller, authenticate, digest, refuse
from portal.state import AppState
from portal.translatable import N_
from portal.web.cookies import CSRF_REFUSED, SESSION_COOKIE, csrf_matches
from schema.bounded import ANSWER_TIMEOUT_S, BoundedWaits, NoAnswer

# Key lookups the database has not answered (they go on; their requests got a 503).
_lookups = BoundedWaits()

bearer = HTTPBearer(auto_error=False, description="An API key from your Resayil dashboard")


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.resayil
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _api_key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    raw = credentials.credentials if credentials else None
    if not raw:
        refuse(_client_ip(request), "-")
    return raw


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "-"


async def resolve_caller(state: AppState, raw: str, ip: str) -> Caller:
    """The key's caller: from the cache in Redis, else from the database (then cached)."""
    wanted = digest(raw)
    cached = await state.auth_cache.get(wanted)
    if cached is not None:
        return Caller(**json.loads(cached))

    def lookup() -> Caller:
        with state.sessions() as session, session.begin():
            return authenticate(session, raw_key=raw, client_ip=ip)

    try:
        caller = await _lookups.answer(anyio.to_thread.run_sync(lookup), ANSWER_TIMEOUT_S)
    except NoAnswer:
        raise DatabaseUnavailable() from None
    await state.auth_cache.put(wanted, caller.account_id, json.dumps(asdict(caller)))
    return caller


async def get_caller(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    return await resolve_caller(state, _api_key(request, credentials), _client_ip(request))


CallerDep = Annotated[Caller, Depends(get_caller)]


@dataclass(frozen=True)
class ChatCaller:
    """The caller of a chat request, possibly from the entry this process last read.

    With a `proof`, the caller is unverified: the request's admission checks the entry
    is still in Redis before it counts (`broker.admission`); `reresolve` judges afresh.
    """

    caller: Caller
    proof: AuthProof | None
    reresolve: Callable[[], Awaitable[Caller]]


async def get_chat_caller(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ChatCaller:
    raw = _api_key(request, credentials)
    ip = _client_ip(request)

    def reresolve() -> Awaitable[Caller]:
        return resolve_caller(state, raw, ip)

    proof = state.auth_cache.last_read(digest(raw))
    if proof is not None:
        return ChatCaller(Caller(**json.loads(proof.payload)), proof, reresolve)
    return ChatCaller(await reresolve(), None, reresolve)


ChatCallerDep = Annotated[ChatCaller, Depends(get_chat_caller)]


class CsrfRejected(PermissionDenied):
    code = "csrf_failed"


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


session_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="SessionToken",
    description="The `token` from /api/auth/login or /api/auth/register",
)
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="SessionCookie",
    description="The session cookie; changes also need the `X-CSRF-Token` header",
)


async def get_web_session(
    request: Request,
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(session_bearer)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> WebSession:
    """The logged-in user of the JSON account API: a session token or the session cookie.

    A browser sends the cookie on its own, so a change made with it must also carry
    the session's CSRF token in `X-CSRF-Token`; a bearer token is never sent by itself.
    """
    token = bearer.credentials if bearer else cookie
    session = await state.web_sessions.get(token) if token else None
    if session is None:
        raise AuthenticationFailed(N_("Log in first."), code="not_logged_in")
    changing = bearer is None and request.method not in SAFE_METHODS
    if changing and not csrf_matches(request.headers.get("x-csrf-token"), session.csrf_token):
        raise CsrfRejected(CSRF_REFUSED)
    return session


WebSessionDep = Annotated[WebSession, Depends(get_web_session)]
