"""`python -m dispatcher`: signals only; the work is in loop.py."""

from __future__ import annotations

import asyncio
import signal

import uvloop

from broker.connection import make_redis
from dispatcher.config import DispatcherSettings, load_settings
from dispatcher.loop import Dispatcher
from schema.db import make_engine, make_session_factory


async def serve(settings: DispatcherSettings) -> None:
    redis = make_redis(settings.redis_url)
    engine = make_engine(settings.database_url)
    dispatcher = Dispatcher(settings, redis, make_session_factory(engine))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, dispatcher.stop)
    try:
        await dispatcher.main()
    finally:
        await redis.aclose()
        engine.dispose()


def main() -> None:
    """Run until SIGTERM or SIGINT; the process entry (`resayil dispatcher`) has set up
    logging and the heap first."""
    uvloop.run(serve(load_settings()))


if __name__ == "__main__":
    from resayil.processes import dispatcher as dispatcher_process

    dispatcher_process()
