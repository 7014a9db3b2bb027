"""Annotated dependencies: what a route needs, resolved from the app's state."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from broker.sessions import WebSession
from portal.exceptions import AuthenticationFailed, PermissionDenied
from portal.keys.service import Caller, authenticate, digest, refuse
from portal.state import AppState
from portal.translatable import N_
from portal.web.cookies import CSRF_REFUSED, SESSION_COOKIE, csrf_matches

bearer = HTTPBearer(auto_error=False, description="An API key from your Resayil dashboard")


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.resayil
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_caller(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    raw = credentials.credentials if credentials else None
    ip = request.client.host if request.client else "-"
    if not raw:
        refuse(ip, "-")
    wanted = digest(raw)
    cached = await state.auth_cache.get(wanted)
    if cached is not None:
        return Caller(**json.loads(cached))

    def lookup() -> Caller:
        with state.sessions() as session, session.begin():
            return authenticate(session, raw_key=raw, client_ip=ip)

    caller = await anyio.to_thread.run_sync(lookup)
    await state.auth_cache.put(wanted, caller.account_id, json.dumps(asdict(caller)))
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


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
