from __future__ import annotations

from datetime import timedelta
from typing import Literal

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
    # The portal: pages in this language unless the visitor chose another ("ar" = Arabic first).
    default_language: Literal["en", "ar"] = "en"
    # Dashboards count days, weeks and months in this timezone.
    report_timezone: str = "Asia/Kuwait"
    session_idle_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    # What a newly registered account starts with (a trial); "" registers without a plan.
    signup_plan: str = "basic"
    signup_credits: int = Field(default=25, ge=0)
    # The trial plan ends after this many days (0 = it does not end).
    signup_trial_days: int = Field(default=14, ge=0)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_throttle_window_s: int = Field(default=900, ge=1)
    # MyFatoorah: the test host by default; live hosts per country are in the README.
    # No token = payments are off (`make run` starts the local MyFatoorah double instead).
    myfatoorah_base_url: str = "https://apitest.myfatoorah.com"
    myfatoorah_token: str = Field(default="", repr=False)
    myfatoorah_webhook_secret: str = Field(default="", repr=False)
    myfatoorah_timeout_s: float = Field(default=30.0, gt=0)
    # An unconfirmed order is asked about again after this long (then ever less often).
    payment_recheck_s: int = Field(default=60, ge=1)
    # "Your subscription ends soon" is emitted this many days before the end.
    expiry_notice_days: int = Field(default=3, ge=0)

    @property
    def topup_url(self) -> str:
        return f"{self.public_base_url.rstrip('/')}/billing"

    @property
    def payment_recheck(self) -> timedelta:
        return timedelta(seconds=self.payment_recheck_s)

    @property
    def expiry_notice(self) -> timedelta:
        return timedelta(days=self.expiry_notice_days)

    @property
    def payments_enabled(self) -> bool:
        return bool(self.myfatoorah_token)


def load_settings() -> PortalSettings:
    return PortalSettings()
