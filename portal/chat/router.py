from __future__ import annotations

import anyio
from fastapi import APIRouter, Header, Request, Response

from portal.chat.service import Admissible, check
from portal.deps import CallerDep, StateDep
from portal.openapi import CHAT_ERRORS, ChatCompletionOut
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
    caller: CallerDep,
    state: StateDep,
    x_resayil_failover: str | None = Header(
        default=None,
        description="`off` keeps this request on its local model even when the local "
        "queue is backed up (it waits instead of overflowing to a cloud model).",
    ),
) -> Response:
    def admissible_now() -> Admissible:
        return check(catalog=state.catalog, settings=state.settings, caller=caller, request=body)

    # A fresh catalog needs no database: check on the loop and spare a thread hop.
    if state.catalog.fresh() is not None:
        admissible = admissible_now()
    else:
        admissible = await anyio.to_thread.run_sync(admissible_now)
    return await state.placement.run(
        caller=caller,
        body=body,
        admissible=admissible,
        request=request,
        failover_header=x_resayil_failover,
    )
