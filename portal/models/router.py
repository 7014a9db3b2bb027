from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from portal import ratelimit
from portal.catalog.service import ModelInfo
from portal.deps import CallerDep, StateDep
from portal.exceptions import NotFound
from portal.openapi import AUTH_ERRORS, MODEL_ERRORS

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible API"])


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


def _model(info: ModelInfo) -> ModelObject:
    return ModelObject(id=info.name, created=info.created, owned_by=info.owned_by)


@router.get("/models", summary="Models the caller's plan includes", responses=AUTH_ERRORS)
async def list_models(request: Request, caller: CallerDep, state: StateDep) -> ModelList:
    await ratelimit.peek(state.limiter, request, caller)
    snapshot = await state.catalog.snapshot()
    return ModelList(
        data=[_model(m) for m in snapshot.plan_models(caller.active_plan(time.time()))]
    )


@router.get(
    "/models/{model_id:path}", summary="One model of the caller's plan", responses=MODEL_ERRORS
)
async def retrieve_model(
    model_id: str, request: Request, caller: CallerDep, state: StateDep
) -> ModelObject:
    await ratelimit.peek(state.limiter, request, caller)
    snapshot = await state.catalog.snapshot()
    for info in snapshot.plan_models(caller.active_plan(time.time())):
        if info.name == model_id:
            return _model(info)
    raise NotFound(
        f"The model `{model_id}` does not exist or you do not have access to it.", param="model"
    )
