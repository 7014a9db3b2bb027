"""Key actions for a logged-in user, shared by the JSON API and the pages.

Deleting revokes the key from the auth cache only after the deletion is committed,
so no request can re-cache the key in between.
"""

from __future__ import annotations

import anyio

from broker.sessions import WebSession
from portal.keys import service
from portal.keys.service import CreatedKey, KeyView
from portal.state import AppState


async def list_own(state: AppState, session: WebSession) -> list[KeyView]:
    def read() -> list[KeyView]:
        with state.sessions() as db:
            return service.list_keys(db, account_id=session.account_id)

    return await anyio.to_thread.run_sync(read)


async def find_own(state: AppState, session: WebSession, key_id: int) -> KeyView:
    def read() -> KeyView:
        with state.sessions() as db:
            return service.find_key(db, account_id=session.account_id, key_id=key_id)

    return await anyio.to_thread.run_sync(read)


async def create_own(state: AppState, session: WebSession, label: str) -> CreatedKey:
    def write() -> CreatedKey:
        with state.sessions() as db, db.begin():
            return service.create_key(
                db, account_id=session.account_id, user_id=session.user_id, label=label
            )

    return await anyio.to_thread.run_sync(write)


async def delete_own(state: AppState, session: WebSession, key_id: int) -> None:
    revoked: list[str] = []

    def write() -> None:
        with state.sessions() as db, db.begin():
            service.delete_key(
                db,
                account_id=session.account_id,
                key_id=key_id,
                revoke=revoked.append,
                actor=f"user:{session.user_id}",
            )

    await anyio.to_thread.run_sync(write)
    for digest in revoked:
        await state.auth_cache.revoke_key(digest)
