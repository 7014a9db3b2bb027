"""Server-side web sessions: a random token in the cookie, its data in Redis.

Only the SHA-256 digest of a token is used as a Redis key, so a copy of Redis holds
no usable session. Every session of a user is indexed, so logging out everywhere (a
password change) ends them all at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from broker.keys import PREFIX

TOKEN_PREFIX = "rss-"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class WebSession:
    token: str
    user_id: int
    account_id: int
    csrf_token: str
    language: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _entry(digest: str) -> str:
    return f"{PREFIX}:session:{digest}"


def _user_index(user_id: int) -> str:
    return f"{PREFIX}:user-sessions:{user_id}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SessionStore:
    def __init__(self, redis: Redis, *, idle_ttl_s: int) -> None:
        self.redis = redis
        self.idle_ttl_s = idle_ttl_s

    async def create(self, *, user_id: int, account_id: int, language: str) -> WebSession:
        session = WebSession(
            token=TOKEN_PREFIX + secrets.token_urlsafe(32),
            user_id=user_id,
            account_id=account_id,
            csrf_token=secrets.token_urlsafe(32),
            language=language,
        )
        digest = _digest(session.token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                _entry(digest),
                mapping={
                    "user_id": user_id,
                    "account_id": account_id,
                    "csrf_token": session.csrf_token,
                    "language": language,
                },
            )
            pipe.expire(_entry(digest), self.idle_ttl_s)
            pipe.sadd(_user_index(user_id), digest)
            pipe.expire(_user_index(user_id), self.idle_ttl_s)
            await pipe.execute()
        return session

    async def get(self, token: str) -> WebSession | None:
        """The session if it is alive; each use extends its idle lifetime."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        digest = _digest(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(_entry(digest))
            pipe.expire(_entry(digest), self.idle_ttl_s)
            fields, _extended = await pipe.execute()
        if not fields:
            return None
        data = {_text(k): _text(v) for k, v in fields.items()}
        await self.redis.expire(_user_index(int(data["user_id"])), self.idle_ttl_s)
        return WebSession(
            token=token,
            user_id=int(data["user_id"]),
            account_id=int(data["account_id"]),
            csrf_token=data["csrf_token"],
            language=data["language"],
        )

    async def set_language(self, token: str, language: str) -> None:
        digest = _digest(token)
        # Only an existing session is changed: HSET on a missing key would resurrect it.
        if await self.redis.exists(_entry(digest)):
            await self.redis.hset(_entry(digest), "language", language)

    async def end(self, session: WebSession) -> None:
        digest = _digest(session.token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(_entry(digest))
            pipe.srem(_user_index(session.user_id), digest)
            await pipe.execute()

    async def end_all_for_user(self, user_id: int, *, keep: str | None = None) -> int:
        """End every session of the user (but `keep`, a token); returns how many ended."""
        digests = {_text(d) for d in await self.redis.smembers(_user_index(user_id))}
        kept = _digest(keep) if keep else None
        ending = [d for d in digests if d != kept]
        if not ending:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*(_entry(d) for d in ending))
            pipe.srem(_user_index(user_id), *ending)
            await pipe.execute()
        return len(ending)
