from __future__ import annotations

from fastapi import APIRouter, Header, Request, Response

from portal.chat.intake import place_chat_request
from portal.deps import ChatCallerDep, StateDep
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
    chat_caller: ChatCallerDep,
    state: StateDep,
    x_resayil_failover: str | None = Header(
        default=None,
        description="`off` keeps this request on its local model even when the local "
        "queue is backed up (it waits instead of overflowing to a cloud model).",
    ),
) -> Response:
    return await place_chat_request(
        state=state,
        chat_caller=chat_caller,
        body=body,
        request=request,
        failover_header=x_resayil_failover,
    )
