"""`create_app(settings)`: the FastAPI application, with everything built in its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from redis.asyncio import Redis

from broker.admission import Admission
from broker.auth_cache import AuthCache
from broker.budget import CloudBudget
from broker.concurrency import AccountSlots
from broker.connection import make_redis
from broker.limits import RateLimiter
from broker.login_throttle import LoginThrottle, ThrottleLimits
from broker.queue import JobQueue, QueueSettings
from broker.sessions import SessionStore
from broker.settlements import SettlementStream
from broker.stream import EventHub
from portal.accounts.login import Authenticator
from portal.accounts.pages import router as account_pages
from portal.accounts.router import router as account_api
from portal.admin.router import router as admin_router
from portal.background import BackgroundTasks
from portal.billing.gateway import payments_client
from portal.billing.pages import router as billing_pages
from portal.billing.router import router as billing_api
from portal.catalog.service import Catalog
from portal.chat.placement import Placement
from portal.chat.relay import ChatRelay
from portal.chat.router import router as chat_router
from portal.config import PortalSettings, load_settings
from portal.dashboard.pages import router as dashboard_pages
from portal.dashboard.router import router as usage_api
from portal.exceptions import DatabaseUnavailable, install_error_handlers
from portal.keys.pages import router as keys_pages
from portal.keys.router import router as keys_api
from portal.models.router import router as models_router
from portal.openapi import install_openapi
from portal.ratelimit import RateLimitHeaders
from portal.site.pages import router as site_pages
from portal.state import AppState
from portal.web.rendering import Renderer
from portal.web.visitor import LoginRequired
from schema import cloud_budget, ledger
from schema.bounded import ANSWER_TIMEOUT_S, BoundedWaits, NoAnswer
from schema.db import make_engine, make_session_factory
from schema.messages import Settlement
from schema.reservations import reservations_for

STATIC_DIR = Path(__file__).resolve().parent / "static"
# How long /healthz waits for Redis and the database to answer before it reports them down.
HEALTH_CHECK_TIMEOUT_S = 2.0


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await _build_state(settings)
        app.state.resayil = state
        try:
            yield
        finally:
            await state.relay.background.drain()
            await state.hub.stop()
            await state.reservations.close()
            await state.redis.aclose()
            state.engine.dispose()
            if state.payments is not None:
                state.payments.close()

    app = FastAPI(
        title="Resayil LLM Portal",
        version="0.1.0",
        description="OpenAI-compatible, pay-per-use LLM API in front of Ollama.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RateLimitHeaders)
    app.add_exception_handler(LoginRequired, _to_login)
    app.include_router(chat_router)
    app.include_router(models_router)
    app.include_router(admin_router)
    app.include_router(account_api)
    app.include_router(keys_api)
    app.include_router(usage_api)
    app.include_router(billing_api)
    for pages in (site_pages, account_pages, dashboard_pages, keys_pages, billing_pages):
        app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get(
        "/healthz",
        tags=["Operations"],
        summary="Liveness, and whether Redis and the database answer",
        responses={
            503: {
                "description": "Redis or the database does not answer: "
                '`{"status": "degraded", "redis": "down", "database": "down"}` '
                "names the ones that do not"
            }
        },
    )
    async def healthz() -> JSONResponse:
        state: AppState = app.state.resayil
        # A probe must hear back in time even from a service that stopped answering.
        redis_up, database_up = await asyncio.gather(
            _redis_answers(state.redis),
            state.reservations.answers(timeout_s=HEALTH_CHECK_TIMEOUT_S),
        )
        checks = {"redis": redis_up, "database": database_up}
        if all(checks.values()):
            return JSONResponse({"status": "ok"})
        down = {name: "down" for name, up in checks.items() if not up}
        return JSONResponse({"status": "degraded", **down}, status_code=503)

    return app


async def _redis_answers(redis: Redis) -> bool:
    try:
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_S):
            await redis.ping()
    except Exception:
        return False
    return True


async def _to_login(_request: Request, error: Exception) -> RedirectResponse:
    assert isinstance(error, LoginRequired)
    return RedirectResponse(error.headers["location"], status_code=303)


async def _build_state(settings: PortalSettings) -> AppState:
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    redis = make_redis(settings.redis_url)
    hub = EventHub(redis)
    await hub.start()
    reservations = reservations_for(sessions)
    await reservations.open()
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

    persisted_reads = BoundedWaits()

    async def load_persisted(day: str) -> int:
        def read() -> int:
            with sessions() as session:
                return cloud_budget.persisted_used(session, day)

        try:
            return await persisted_reads.answer(anyio.to_thread.run_sync(read), ANSWER_TIMEOUT_S)
        except NoAnswer:
            raise DatabaseUnavailable() from None

    budget = CloudBudget(redis, load_persisted)
    relay = ChatRelay(hub, queue, settings, settle_now, BackgroundTasks(), budget)
    placement = Placement(
        settings=settings,
        sessions=sessions,
        reservations=reservations,
        admission=Admission(redis),
        queue=queue,
        budget=budget,
        relay=relay,
        # A slot outlives no request: the longest is its queue wait plus its generation.
        slots=AccountSlots(redis, ttl_ms=int((settings.max_queue_wait_s + 600) * 1000)),
        settlements=SettlementStream(redis, consumer="api"),
    )
    web_sessions = SessionStore(redis, idle_ttl_s=settings.session_idle_ttl_s)
    throttle = LoginThrottle(
        redis,
        ThrottleLimits(
            per_account=settings.login_max_failures_per_account,
            per_address=settings.login_max_failures_per_address,
            window_s=settings.login_throttle_window_s,
        ),
    )
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redis=redis,
        hub=hub,
        reservations=reservations,
        queue=queue,
        catalog=Catalog(sessions, settings.catalog_ttl_s),
        relay=relay,
        limiter=RateLimiter(redis),
        placement=placement,
        auth_cache=AuthCache(redis),
        web_sessions=web_sessions,
        authenticator=Authenticator(
            sessions=sessions, store=web_sessions, throttle=throttle, settings=settings
        ),
        renderer=Renderer(
            public_base_url=settings.public_base_url, timezone=settings.report_timezone
        ),
        payments=payments_client(settings),
    )
