"""`create_app(settings)`: the FastAPI application, with everything built in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from broker.auth_cache import AuthCache
from broker.budget import CloudBudget
from broker.concurrency import AccountSlots
from broker.connection import make_redis
from broker.limits import RateLimiter
from broker.queue import JobQueue, QueueSettings
from broker.stream import EventHub
from portal.admin.router import router as admin_router
from portal.catalog.service import Catalog
from portal.chat.placement import Placement
from portal.chat.relay import ChatRelay
from portal.chat.router import router as chat_router
from portal.config import PortalSettings, load_settings
from portal.exceptions import install_error_handlers
from portal.models.router import router as models_router
from portal.openapi import install_openapi
from portal.ratelimit import RateLimitHeaders
from portal.state import AppState
from schema import cloud_budget, ledger
from schema.db import make_engine, make_session_factory
from schema.messages import Settlement


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await _build_state(settings)
        app.state.resayil = state
        try:
            yield
        finally:
            await state.relay.drain()
            await state.hub.stop()
            await state.redis.aclose()
            state.engine.dispose()

    app = FastAPI(
        title="Resayil LLM Portal",
        version="0.1.0",
        description="OpenAI-compatible, pay-per-use LLM API in front of Ollama.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RateLimitHeaders)
    app.include_router(chat_router)
    app.include_router(models_router)
    app.include_router(admin_router)

    @app.get("/", tags=["Operations"], summary="What this server is and where its API lives")
    async def root() -> dict[str, str]:
        return {
            "name": "Resayil LLM Portal",
            "api": f"{settings.public_base_url.rstrip('/')}/v1",
            "docs": "/docs",
            "openapi": "/openapi.json",
        }

    @app.get(
        "/healthz",
        tags=["Operations"],
        summary="Liveness and Redis reachability",
        responses={503: {"description": "Redis is unreachable"}},
    )
    async def healthz() -> JSONResponse:
        state: AppState = app.state.resayil
        try:
            await state.redis.ping()
        except Exception:
            return JSONResponse({"status": "degraded", "redis": "down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app


async def _build_state(settings: PortalSettings) -> AppState:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    redis = make_redis(settings.redis_url)
    hub = EventHub(redis)
    await hub.start()
    queue = JobQueue(
        redis,
        QueueSettings(
            tier_head_start_ms=settings.tier_head_start_ms, fair_share_ms=settings.fair_share_ms
        ),
    )

    async def settle_now(settlement: Settlement) -> None:
        def write() -> None:
            with sessions() as session, session.begin():
                ledger.settle(session, [settlement])

        await anyio.to_thread.run_sync(write)

    async def load_persisted(day: str) -> int:
        def read() -> int:
            with sessions() as session:
                return cloud_budget.persisted_used(session, day)

        return await anyio.to_thread.run_sync(read)

    budget = CloudBudget(redis, load_persisted)
    relay = ChatRelay(hub, queue, settings, settle_now, budget)
    placement = Placement(
        settings=settings,
        sessions=sessions,
        queue=queue,
        budget=budget,
        relay=relay,
        # A slot outlives no request: the longest is its queue wait plus its generation.
        slots=AccountSlots(redis, ttl_ms=int((settings.max_queue_wait_s + 600) * 1000)),
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        hub=hub,
        queue=queue,
        catalog=Catalog(sessions, settings.catalog_ttl_s),
        relay=relay,
        limiter=RateLimiter(redis),
        placement=placement,
        auth_cache=AuthCache(redis),
    )
