"""The JSON API for the logged-in user's API keys."""

from __future__ import annotations

from fastapi import APIRouter, status

from portal.deps import StateDep, WebSessionDep
from portal.keys import actions
from portal.keys.schemas import CreatedKeyOut, KeyIn, KeyOut
from portal.openapi import SESSION_ERRORS, error_responses

router = APIRouter(prefix="/api/keys", tags=["Account API"])


@router.get(
    "", summary="The account's API keys (never the keys themselves)", responses=SESSION_ERRORS
)
async def list_keys(session: WebSessionDep, state: StateDep) -> list[KeyOut]:
    return [KeyOut(**vars(key)) for key in await actions.list_own(state, session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key; the response holds the full key, shown only this once",
    responses={**SESSION_ERRORS, **error_responses(400, "Missing or too long label")},
)
async def create_key(body: KeyIn, session: WebSessionDep, state: StateDep) -> CreatedKeyOut:
    created = await actions.create_own(state, session, body.label)
    return CreatedKeyOut(
        id=created.id,
        label=created.label,
        prefix=created.prefix,
        created_at=created.created_at,
        key=created.key,
    )


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an API key; it fails from its very next request",
    responses={**SESSION_ERRORS, **error_responses(404, "No such key in this account")},
)
async def delete_key(key_id: int, session: WebSessionDep, state: StateDep) -> None:
    await actions.delete_own(state, session, key_id)
