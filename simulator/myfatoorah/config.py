"""Settings of the MyFatoorah double; the CLI reads `MYFATOORAH_SIM_*` only through here."""

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

THREE_DAYS_S = 3 * 24 * 3600.0
# Delivery attempts of the real service: v1 tries 4 times; v2 tries once plus at most 5 retries.
REAL_WEBHOOK_ATTEMPTS: dict[int, int] = {1: 4, 2: 6}


class MyFatoorahConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MYFATOORAH_SIM_", extra="forbid", validate_assignment=True
    )

    token: str = "test-token"  # noqa: S105 - the double's well-known test token
    # The base URL browsers use for the payment page; None = the server's own URL.
    public_url: str | None = None
    webhook_url: str | None = None  # None = no webhooks
    webhook_secret: str = "test-webhook-secret"  # noqa: S105 - a test secret, as above
    webhook_version: Literal[1, 2] = 2
    duplicate_webhooks: int = Field(default=1, ge=1)
    hold_webhooks: bool = False
    invoice_ttl_s: float = Field(default=THREE_DAYS_S, gt=0)
    # The real service waits ~10 s (v1) or up to 180 s (v2) between attempts; tests cannot.
    webhook_retry_delay_s: float = Field(default=0.2, ge=0)
    webhook_attempts: int | None = Field(default=None, ge=1)  # None = as the real one
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # The first invoice, transaction and event number; None = the clock in 1/10 s.
    first_id: int | None = Field(default=None, ge=1)

    @property
    def delivery_attempts(self) -> int:
        return self.webhook_attempts or REAL_WEBHOOK_ATTEMPTS[self.webhook_version]


def load_config(**overrides: Any) -> MyFatoorahConfig:
    """The environment's settings, with the given non-None values on top (CLI options)."""
    return MyFatoorahConfig(**{key: value for key, value in overrides.items() if value is not None})
