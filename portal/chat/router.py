from __future__ import annotations

import contextlib

import anyio
from fastapi import APIRouter, Header, Request, Response

from broker.admission import AuthEntryChanged
from broker.auth_cache import AuthProof
from portal.chat.service import Admissible, check
from portal.deps import ChatCallerDep, StateDep
from portal.exceptions import GatewayError
from portal.keys.service import Caller
from portal.openapi import CHAT_ERRORS, ChatCompletionOut
from portal.state import AppState
from schema.openai import ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible API"])


@router.post(
    "/chat/completions",
    summary="Create a chat completion (OpenAI wire format; `stream: true` answers with SSE)",
    response_model=None,
    responses={
        200: {
            "model": ChatCompletionOut,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "The completion (JSON), or its chunks (SSE) when `stream` is true",
        },
        **CHAT_ERRORS,
    },
)
async def create_chat_completion(
    body: ChatCompletionRequest,
    request: Request,
    chat_caller: ChatCallerDep,
    state: StateDep,
    x_resayil_failover: str | None = Header(
        default=None,
        description="`off` keeps this request on its local model even when the local "
        "queue is backed up (it waits instead of overflowing to a cloud model).",
    ),
) -> Response:
    async def place(caller: Caller, admissible: Admissible, proof: AuthProof | None) -> Response:
        return await state.placement.run(
            caller=caller,
            body=body,
            admissible=admissible,
            request=request,
            failover_header=x_resayil_failover,
            proof=proof,
        )

    remembered, proof = chat_caller.caller, chat_caller.proof
    if proof is not None:
        # Judged on the entry this process last read: a refusal by the checks, or an
        # entry that changed (raised before anything counted), is judged again below
        # on the current entry.
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
    def admissible_now() -> Admissible:
        return check(catalog=state.catalog, settings=state.settings, caller=caller, request=body)

    # A fresh catalog needs no database: check on the loop and spare a thread hop.
    if state.catalog.fresh() is not None:
        return admissible_now()
    return await anyio.to_thread.run_sync(admissible_now)
