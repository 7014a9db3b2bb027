"""Recording admin and security-relevant actions, in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from schema.models import AuditEntry


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: int,
    details: dict[str, object] | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details or {},
        )
    )
