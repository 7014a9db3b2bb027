"""Annotated dependencies: what a route needs, resolved from the app's state."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portal.keys.service import Caller, authenticate, digest, refuse
from portal.state import AppState

bearer = HTTPBearer(auto_error=False, description="An API key from your Resayil dashboard")


def get_state(request: Request) -> AppState:
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
