from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, RedisError

from broker.pipelined import ScriptPipeRedis

# What callers treat as "the broker is unavailable right now" (a 503, not a 500).
UNAVAILABLE: tuple[type[Exception], ...] = (RedisError,)

# A burst larger than the pool waits for a free connection instead of failing
# (redis-py's default pool raises MaxConnectionsError past its size).
MAX_CONNECTIONS = 200
WAIT_FOR_CONNECTION_S = 10.0
# No command waits longer for its reply (the blocking ones here block for a second at
# most): a stalled Redis, or a connection that died without a reset, is then "the broker
# is unavailable" (a 503), not a request that never ends.
COMMAND_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0


def make_redis(
    url: str,
    *,
    max_connections: int = MAX_CONNECTIONS,
    command_timeout_s: float = COMMAND_TIMEOUT_S,
) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=WAIT_FOR_CONNECTION_S,
        socket_timeout=command_timeout_s,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=30,
        # Pooled connections of a Redis that restarted fail once; reconnect and retry
        # instead of failing the request that happened to pick them up. Not a command
        # that timed out: Redis may have run it.
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3, (ConnectionError,)),
        retry_on_error=[ConnectionError],
    )
    # The client owns the pool: aclose() closes it too.
    return ScriptPipeRedis(pool, reply_timeout_s=command_timeout_s)
