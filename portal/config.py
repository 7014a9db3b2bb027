from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = "sqlite:///var/resayil.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    public_base_url: str = "http://127.0.0.1:8000"
    # A streaming request that waits longer than this in the queue gets its 200 and
    # SSE heartbeats; errors known before then are plain JSON with the right status.
    first_byte_wait_s: float = Field(default=1.0, ge=0)
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    catalog_ttl_s: float = Field(default=5.0, ge=0)
    tier_head_start_ms: int = Field(default=10_000, ge=0)
    fair_share_ms: int = Field(default=1_000, ge=0)
    # Overflow to cloud: a local request goes to its model's cloud fallback (or this
    # default) when it would be waiter number `failover_backlog` + 1 or later for a slot.
    failover_enabled: bool = True
    failover_backlog: int = Field(default=3, ge=0)
    cloud_fallback_model: str = "qwen3.5:cloud"
    cloud_daily_cap: int = Field(default=500, ge=0)
    # Backpressure: past these the API answers 503 (429 for the per-account cap).
    max_queued_jobs: int = Field(default=1000, ge=1)
    max_queue_wait_s: float = Field(default=300.0, gt=0)
    max_concurrent_per_account: int = Field(default=0, ge=0)  # 0 = no cap
    budget_timezone: str = "Asia/Kuwait"

    @property
    def topup_url(self) -> str:
        return f"{self.public_base_url.rstrip('/')}/billing"


def load_settings() -> PortalSettings:
    return PortalSettings()
