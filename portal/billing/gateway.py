"""The MyFatoorah client the running services use, built from the settings."""

from __future__ import annotations

from portal.billing.myfatoorah import MyFatoorahClient
from portal.config import PortalSettings


def payments_client(settings: PortalSettings) -> MyFatoorahClient | None:
    if not settings.payments_enabled:
        return None
    return MyFatoorahClient(
        base_url=settings.myfatoorah_base_url,
        token=settings.myfatoorah_token,
        timeout_s=settings.myfatoorah_timeout_s,
    )
