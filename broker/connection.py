from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

# A burst larger than the pool waits for a free connection instead of failing
# (redis-py's default pool raises MaxConnectionsError past its size).
MAX_CONNECTIONS = 200
WAIT_FOR_CONNECTION_S = 10.0


def make_redis(url: str, *, max_connections: int = MAX_CONNECTIONS) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=WAIT_FOR_CONNECTION_S,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it too
