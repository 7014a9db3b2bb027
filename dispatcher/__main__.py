"""`python -m dispatcher`: signals only; the work is in loop.py."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop

from broker.connection import make_redis
from dispatcher.config import DispatcherSettings, load_settings
from dispatcher.loop import Dispatcher
from resayil.heap import freeze_startup_heap
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()
    freeze_startup_heap()
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
