"""A chat request from its caller to its placement.

A request whose key this process has seen is judged on the entry it last read (no
round trip); its admission checks in Redis that the entry still holds before anything
counts. A refusal by the checks made on that copy, or an entry that changed, is judged
again on the current entry (an upgraded plan must not keep getting 403 from a stale copy).
"""

from __future__ import annotations

import contextlib

from fastapi import Request, Response

from broker.admission import AuthEntryChanged
from broker.auth_cache import AuthProof
from portal.chat.placement import Pending
from portal.chat.service import Admissible, check
from portal.deps import ChatCaller
from portal.exceptions import GatewayError
from portal.keys.service import Caller
from portal.state import AppState
from schema.openai import ChatCompletionRequest


async def place_chat_request(
    *,
    state: AppState,
    chat_caller: ChatCaller,
    body: ChatCompletionRequest,
    request: Request,
    failover_header: str | None,
) -> Response:
    async def place(caller: Caller, admissible: Admissible, proof: AuthProof | None) -> Response:
        return await state.placement.run(
            Pending(caller, body, admissible, request), failover_header=failover_header, proof=proof
        )

    remembered, proof = chat_caller.caller, chat_caller.proof
    if proof is not None:
        try:
            admissible: Admissible | None = await admissible_for(state, remembered, body)
        except GatewayError:
            admissible = None
        if admissible is not None:
            with contextlib.suppress(AuthEntryChanged):
                return await place(remembered, admissible, proof)
    caller = await chat_caller.reresolve()
    return await place(caller, await admissible_for(state, caller, body), None)


async def admissible_for(
    state: AppState, caller: Caller, body: ChatCompletionRequest
) -> Admissible:
    snapshot = await state.catalog.snapshot()
    return check(snapshot=snapshot, settings=state.settings, caller=caller, request=body)
