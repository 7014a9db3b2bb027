from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response

from portal import ratelimit
from portal.chat.service import check, reserve
from portal.deps import CallerDep, StateDep
from portal.openapi import OPENAI_ERRORS
from schema.openai import ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible API"])


@router.post(
    "/chat/completions",
    summary="Create a chat completion (OpenAI wire format; `stream: true` answers with SSE)",
    responses={200: {"content": {"text/event-stream": {}}}, **OPENAI_ERRORS},
)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, caller: CallerDep, state: StateDep
) -> Response:
    admissible = await anyio.to_thread.run_sync(
        lambda: check(catalog=state.catalog, settings=state.settings, caller=caller, request=body)
    )
    await ratelimit.take(state.limiter, request, caller)
    job = await anyio.to_thread.run_sync(
        lambda: reserve(
            sessions=state.sessions,
            settings=state.settings,
            caller=caller,
            request=body,
            admissible=admissible,
        )
    )
    return await state.relay.respond(job, request)
