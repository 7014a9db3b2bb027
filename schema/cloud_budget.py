"""Persisting the cloud budget and recording admin alerts (shared by api and dispatcher)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schema.models import AdminAlert, CloudBudgetDay
from schema.models._time import utcnow

ALERT_LEVELS = ((100, "cloud_budget_100"), (80, "cloud_budget_80"))


def persisted_used(session: Session, day: str) -> int:
    return session.scalar(select(CloudBudgetDay.used).where(CloudBudgetDay.day == day)) or 0


def persist_used(session: Session, *, day: str, used: int) -> None:
    """Raise the day's high-water mark to `used` (never lowers it)."""
    raised = session.execute(
        update(CloudBudgetDay)
        .where(CloudBudgetDay.day == day, CloudBudgetDay.used < used)
        .values(used=used, updated_at=utcnow())
    )
    if raised.rowcount:  # type: ignore[attr-defined]
        return
    if session.get(CloudBudgetDay, day) is None:
        try:
            with session.begin_nested():
                session.add(CloudBudgetDay(day=day, used=used))
        except IntegrityError:
            persist_used(session, day=day, used=used)


def alert_for(used: int, cap: int) -> str | None:
    """The alert a count of exactly `used` crosses into, if any."""
    for percent, kind in ALERT_LEVELS:
        if used == max(1, -(-cap * percent // 100)):
            return kind
    return None


def record_alert(session: Session, *, kind: str, day: str, message: str) -> bool:
    """True if recorded now; False if this alert was already raised for the day."""
    try:
        with session.begin_nested():
            session.add(AdminAlert(kind=kind, day=day, message=message))
    except IntegrityError:
        return False
    return True
