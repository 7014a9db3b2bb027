"""Plans, models and prices as the API sees them: read from the database, cached briefly.

Hidden models are indistinguishable from unknown ones everywhere: same status, same
code, same message shape, and they appear in no list.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

import anyio
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from portal.exceptions import DatabaseUnavailable, NotFound, PermissionDenied
from schema.bounded import BoundedWaits, NoAnswer
from schema.messages import Pool
from schema.models import CatalogModel, Plan, PlanModel, Price

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    pool: Pool
    upstream_name: str
    cloud_fallback: str | None
    owned_by: str
    created: int


@dataclass(frozen=True)
class PlanInfo:
    code: str
    name_en: str
    tier: int
    requests_per_minute: int
    models: tuple[str, ...]


@dataclass(frozen=True)
class CatalogSnapshot:
    models: dict[str, ModelInfo]  # visible models only
    plans: dict[str, PlanInfo]
    prices: dict[str, int] = field(default_factory=dict)

    def plan_models(self, plan_code: str | None) -> list[ModelInfo]:
        plan = self.plans.get(plan_code or "")
        if plan is None:
            return []
        return [self.models[name] for name in plan.models if name in self.models]

    def resolve(self, name: str, plan_code: str | None) -> ModelInfo:
        model = self.models.get(name)
        if model is None:
            raise NotFound(
                f"The model `{name}` does not exist or you do not have access to it.",
                param="model",
            )
        plan = self.plans.get(plan_code or "")
        if plan is None or name not in plan.models:
            raise PermissionDenied(self._not_in_plan(name), param="model")
        return model

    def _not_in_plan(self, name: str) -> str:
        having = [
            p.name_en for p in sorted(self.plans.values(), key=lambda p: p.tier) if name in p.models
        ]
        if having:
            return (
                f"The model `{name}` is not included in your plan; "
                f"it is available on the {having[0]} plan."
            )
        return f"The model `{name}` is not included in your plan."

    def price(self, pool: Pool) -> int:
        return self.prices[pool]


def load_snapshot(session: Session) -> CatalogSnapshot:
    models = {
        m.name: ModelInfo(m.name, m.pool, m.upstream_name, m.cloud_fallback, m.owned_by, m.created)  # type: ignore[arg-type]
        for m in session.scalars(select(CatalogModel).where(CatalogModel.hidden.is_(False)))
    }
    members: dict[int, list[str]] = {}
    for plan_id, model_name in session.execute(select(PlanModel.plan_id, PlanModel.model_name)):
        members.setdefault(plan_id, []).append(model_name)
    plans = {
        p.code: PlanInfo(
            p.code,
            p.name_en,
            p.tier,
            p.requests_per_minute,
            tuple(sorted(n for n in members.get(p.id, []) if n in models)),
        )
        for p in session.scalars(select(Plan))
    }
    prices = {p.pool: p.credits_per_request for p in session.scalars(select(Price))}
    return CatalogSnapshot(models, plans, prices)


# How long a request waits for a reload of a stale catalog before it goes on with the
# snapshot it has (the reload goes on): a database that stopped answering must not hold
# up every request.
RELOAD_WAIT_S = 2.0


class Catalog:
    """A snapshot of the catalog, reloaded when older than `ttl_s`."""

    def __init__(
        self, sessions: sessionmaker[Session], ttl_s: float, *, reload_wait_s: float = RELOAD_WAIT_S
    ) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._reload_wait_s = reload_wait_s
        self._lock = threading.Lock()
        self._snapshot: CatalogSnapshot | None = None
        self._loaded_at = 0.0
        self._reloading: asyncio.Future[CatalogSnapshot] | None = None
        self._waits = BoundedWaits()

    def fresh(self) -> CatalogSnapshot | None:
        """The snapshot if it needs no reload: safe to use on the event loop."""
        snapshot = self._snapshot
        if snapshot is None or time.monotonic() - self._loaded_at >= self._ttl_s:
            return None
        return snapshot

    async def snapshot(self) -> CatalogSnapshot:
        """The snapshot, reloaded in a worker thread (one at a time) when it is stale.

        A reload that has not answered within `reload_wait_s`, or that the database
        refused, leaves the stale snapshot in use; with none loaded yet, the request gets
        a 503.
        """
        snapshot = self.fresh()
        if snapshot is not None:
            return snapshot
        reload = self._reloading
        if reload is None or reload.done():
            reload = self._reloading = asyncio.ensure_future(anyio.to_thread.run_sync(self.current))
        try:
            # This reload: by the time it has answered, another may have started.
            return await self._waits.answer(reload, self._reload_wait_s)
        except (NoAnswer, OperationalError) as failed:
            if self._snapshot is not None:
                why = "unanswered" if isinstance(failed, NoAnswer) else f"failed: {failed}"
                log.warning("catalog reload %s; the previous snapshot serves on", why)
                return self._snapshot
            if isinstance(failed, OperationalError):
                raise
            raise DatabaseUnavailable() from None

    def current(self) -> CatalogSnapshot:
        """Call from a worker thread: it may query the database."""
        snapshot = self.fresh()
        if snapshot is not None:
            return snapshot
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._loaded_at >= self._ttl_s:
                with self._sessions() as session:
                    self._snapshot = load_snapshot(session)
                self._loaded_at = time.monotonic()
            return self._snapshot
