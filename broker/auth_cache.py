"""A short-lived cache of resolved API keys, so a busy key costs no database query.

Entries are dropped the moment a key is deleted or its account changes (`revoke_*`),
so a deleted key still fails on its very next request; the TTL only bounds how long a
change made without a revocation could go unnoticed.

Each api process also remembers the entries it last read. A chat request may be judged
on that copy, provided its admission script finds the very same entry still in Redis
before the request counts for anything (`AuthProof`): that spares the request a round
trip without weakening revocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from broker.keys import PREFIX

TTL_S = 10
REMEMBERED = 10_000  # entries an api process keeps; past that it starts afresh


@dataclass(frozen=True)
class AuthProof:
    """A cached entry as this process last read it, to be checked against Redis."""

    key: str
    payload: bytes


def _entry(digest: str) -> str:
    return f"{PREFIX}:auth:{digest}"


def _account_index(account_id: int) -> str:
    return f"{PREFIX}:auth-account:{account_id}"


def _entries(digests: Any) -> list[str]:
    return [_entry(d.decode() if isinstance(d, bytes) else str(d)) for d in digests]


class AuthCache:
    def __init__(self, redis: Redis, ttl_s: int = TTL_S) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self._last_read: dict[str, bytes] = {}

    async def get(self, digest: str) -> bytes | None:
        value: Any = await self.redis.get(_entry(digest))
        if value is None:
            self._last_read.pop(digest, None)
            return None
        self._remember(digest, bytes(value))
        return bytes(value)

    async def put(self, digest: str, account_id: int, payload: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(_entry(digest), payload, ex=self.ttl_s)
            pipe.sadd(_account_index(account_id), digest)
            pipe.expire(_account_index(account_id), self.ttl_s * 2)
            await pipe.execute()
        self._remember(digest, payload.encode())

    def last_read(self, digest: str) -> AuthProof | None:
        """The entry as this process last read or wrote it: unverified until checked."""
        payload = self._last_read.get(digest)
        return None if payload is None else AuthProof(_entry(digest), payload)

    def _remember(self, digest: str, payload: bytes) -> None:
        if len(self._last_read) >= REMEMBERED and digest not in self._last_read:
            self._last_read.clear()
        self._last_read[digest] = payload

    async def revoke_key(self, digest: str) -> None:
        self._last_read.pop(digest, None)
        await self.redis.delete(_entry(digest))

    async def revoke_account(self, account_id: int) -> None:
        digests: Any = await self.redis.smembers(_account_index(account_id))
        await self.redis.delete(_account_index(account_id), *_entries(digests))


def revoke_key(redis: SyncRedis, digest: str) -> None:
    redis.delete(_entry(digest))


def revoke_account(redis: SyncRedis, account_id: int) -> None:
    """Drop every cached key of the account (its plan, limit or status changed)."""
    digests: Any = redis.smembers(_account_index(account_id))
    redis.delete(_account_index(account_id), *_entries(digests))
