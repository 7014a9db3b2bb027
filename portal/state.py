"""What the running app holds: built in the lifespan, never at import time."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from broker.auth_cache import AuthCache
from broker.limits import RateLimiter
from broker.queue import JobQueue
from broker.sessions import SessionStore
from broker.stream import EventHub
from portal.accounts.login import Authenticator
from portal.billing.myfatoorah import MyFatoorahClient
from portal.catalog.service import Catalog
from portal.chat.placement import Placement
from portal.chat.relay import ChatRelay
from portal.config import PortalSettings
from portal.web.rendering import Renderer
from schema.reservations import CreditReservations


@dataclass
class AppState:
    settings: PortalSettings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis
    hub: EventHub
    reservations: CreditReservations
    queue: JobQueue
    catalog: Catalog
    relay: ChatRelay
    limiter: RateLimiter
    placement: Placement
    auth_cache: AuthCache
    web_sessions: SessionStore
    authenticator: Authenticator
    renderer: Renderer
    payments: MyFatoorahClient | None = None  # None: no MyFatoorah token configured
