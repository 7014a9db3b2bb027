from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DispatcherSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = "sqlite:///var/resayil.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    ollama_url: str = "http://127.0.0.1:11434"
    # Cloud models go here; empty means the local Ollama, which forwards `:cloud` models.
    ollama_cloud_url: str = ""
    ollama_api_key: str = Field(default="", repr=False)
    local_slots: int = Field(default=4, ge=1)
    cloud_slots: int = Field(default=8, ge=1)
    lease_ms: int = Field(default=5_000, ge=500)
    max_attempts: int = Field(default=3, ge=1)
    drain_timeout_s: float = 30.0
    upstream_connect_timeout_s: float = 5.0
    upstream_read_timeout_s: float = 300.0
    # Usage rows are written at most this often, each time all that finished meanwhile in
    # one transaction (a busy dispatcher does not pay a write per request); refunds at once.
    settle_interval_ms: int = Field(default=100, ge=0)

    @property
    def cloud_base_url(self) -> str:
        return self.ollama_cloud_url or self.ollama_url


def load_settings() -> DispatcherSettings:
    return DispatcherSettings()
