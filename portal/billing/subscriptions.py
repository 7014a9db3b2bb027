"""Where a subscription stands, and the sweep that announces endings.

An ended subscription needs no job to take effect: the API compares the end date
with the clock on every request (`Caller.active_plan`). The sweep only records the
events the customer is told about: "ends soon" once per end date, and "ended".
Credits are kept when a plan ends; they can be used again after renewing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.billing import events
from schema.models import Account, Plan

ACTIVE, ENDING, EXPIRED, NONE, OPEN_ENDED = "active", "ending", "expired", "none", "open_ended"


@dataclass(frozen=True)
class Subscription:
    plan_code: str | None
    plan_name_en: str | None
    plan_name_ar: str | None
    expires_at: datetime | None
    status: str  # active | ending | expired | none | open_ended

    def plan_name(self, language: str) -> str | None:
        return self.plan_name_ar if language == "ar" else self.plan_name_en

    @property
    def usable(self) -> bool:
        return self.status in (ACTIVE, ENDING, OPEN_ENDED)


def status_of(
    plan_code: str | None, expires_at: datetime | None, *, now: datetime, notice: timedelta
) -> str:
    if plan_code is None:
        return NONE
    if expires_at is None:
        return OPEN_ENDED
    if expires_at <= now:
        return EXPIRED
    return ENDING if expires_at - now <= notice else ACTIVE


def subscription(
    session: Session, *, account_id: int, now: datetime, notice: timedelta
) -> Subscription:
    row = session.execute(
        select(Plan.code, Plan.name_en, Plan.name_ar, Account.plan_expires_at)
        .select_from(Account)
        .outerjoin(Plan, Plan.id == Account.plan_id)
        .where(Account.id == account_id)
    ).one()
    code, name_en, name_ar, expires_at = row
    return Subscription(
        code, name_en, name_ar, expires_at, status_of(code, expires_at, now=now, notice=notice)
    )


def sweep(session: Session, *, now: datetime, notice: timedelta) -> int:
    """Record `subscription_expiring` and `subscription_expired` events; returns how many
    were new. Safe to run as often as wanted, from several processes."""
    rows = session.execute(
        select(Account.id, Plan.code, Account.plan_expires_at)
        .join(Plan, Plan.id == Account.plan_id)
        .where(
            Account.plan_expires_at.is_not(None),
            Account.plan_expires_at <= now + notice,
            # An ending more than a period ago was announced long since.
            Account.plan_expires_at > now - timedelta(days=31),
        )
    ).all()
    new = 0
    for account_id, plan_code, ends in rows:
        assert ends is not None  # the query keeps dated plans only
        kind = "subscription_expired" if ends <= now else "subscription_expiring"
        new += events.emit(
            session,
            account_id=account_id,
            kind=kind,
            dedupe_key=f"{kind}:{account_id}:{ends.isoformat()}",
            details={"plan": plan_code, "expires_at": ends.isoformat()},
        )
    return new
