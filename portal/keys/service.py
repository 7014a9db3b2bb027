"""API keys: random secrets, stored only as a SHA-256 digest plus their first 12 characters."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from portal.exceptions import AuthenticationFailed, InvalidRequest, NotFound
from portal.translatable import N_
from schema import audit
from schema.models import Account, ApiKey, Plan, User

KEY_PREFIX = "rsy-"
DISPLAY_CHARS = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)

security_log = logging.getLogger("resayil.security")


@dataclass(frozen=True)
class Caller:
    """Who is calling the API, as resolved from a key (cached as JSON by the api)."""

    account_id: int
    api_key_id: int
    plan_code: str | None
    plan_tier: int
    suspended: bool
    # The account's override if set (0 = unlimited), else the plan's limit.
    requests_per_minute: int
    # The key was made by a platform admin: it may use the admin API.
    is_admin: bool = False
    # When the paid period ends (seconds since the epoch); None = it does not end.
    plan_expires_at: float | None = None

    def active_plan(self, now: float) -> str | None:
        """The plan the API serves: none once the subscription has expired."""
        if self.plan_expires_at is not None and now >= self.plan_expires_at:
            return None
        return self.plan_code


@dataclass(frozen=True)
class CreatedKey:
    id: int
    label: str
    key: str  # shown once, never stored
    prefix: str
    created_at: datetime


@dataclass(frozen=True)
class KeyView:
    id: int
    label: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


def _key_views(session: Session, *conditions: ColumnElement[bool]) -> list[KeyView]:
    rows = session.execute(
        select(ApiKey.id, ApiKey.label, ApiKey.prefix, ApiKey.created_at, ApiKey.last_used_at)
        .where(ApiKey.deleted_at.is_(None), *conditions)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return [
        KeyView(key_id, label, prefix, created, used)
        for key_id, label, prefix, created, used in rows
    ]


def list_keys(session: Session, *, account_id: int) -> list[KeyView]:
    """The account's live keys, newest first."""
    return _key_views(session, ApiKey.account_id == account_id)


def find_key(session: Session, *, account_id: int, key_id: int) -> KeyView:
    """One of the account's live keys; any other id is 'not found', whoever owns it."""
    found = _key_views(session, ApiKey.account_id == account_id, ApiKey.id == key_id)
    if not found:
        raise NotFound(N_("No such API key."), code="key_not_found")
    return found[0]


def valid_label(label: str) -> str:
    label = " ".join(label.split())
    if not label or len(label) > 100:
        raise InvalidRequest(
            N_("Give the key a label of 1 to 100 characters."), param="label", code="invalid_label"
        )
    return label


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 256 bits of entropy


def create_key(session: Session, *, account_id: int, user_id: int | None, label: str) -> CreatedKey:
    label = valid_label(label)
    raw = new_secret()
    key = ApiKey(
        account_id=account_id,
        created_by_user_id=user_id,
        label=label,
        prefix=raw[:DISPLAY_CHARS],
        digest=digest(raw),
    )
    session.add(key)
    session.flush()
    return CreatedKey(key.id, key.label, raw, key.prefix, key.created_at)


def delete_key(
    session: Session,
    *,
    account_id: int,
    key_id: int,
    revoke: Callable[[str], None],
    actor: str,
) -> None:
    """Soft-delete one of the account's keys; another account's key id is 'not found'.

    `revoke(digest)` drops the key from the api's auth cache, so it fails on its very
    next request (`broker.auth_cache.revoke_key`).
    """
    digest_of_key = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.account_id == account_id, ApiKey.deleted_at.is_(None))
        .values(deleted_at=datetime.now(UTC))
        .returning(ApiKey.digest)
    ).scalar_one_or_none()
    if digest_of_key is None:
        raise NotFound(N_("No such API key."), code="key_not_found")
    audit.record(
        session,
        actor=actor,
        action="api_key.deleted",
        target_type="api_key",
        target_id=key_id,
        details={"account_id": account_id},
    )
    revoke(digest_of_key)


def authenticate(session: Session, *, raw_key: str | None, client_ip: str) -> Caller:
    if not raw_key:
        refuse(client_ip, "-")
    wanted = digest(raw_key)
    row = session.execute(
        select(
            ApiKey.id,
            ApiKey.digest,
            Account.id,
            Account.suspended,
            Plan.code,
            Plan.tier,
            func.coalesce(Account.rpm_override, Plan.requests_per_minute, 0),
            ApiKey.last_used_at,
            func.coalesce(User.is_admin, False),
            Account.plan_expires_at,
        )
        .join(Account, Account.id == ApiKey.account_id)
        .outerjoin(User, User.id == ApiKey.created_by_user_id)
        .outerjoin(Plan, Plan.id == Account.plan_id)
        .where(ApiKey.digest == wanted, ApiKey.deleted_at.is_(None))
    ).first()
    # The lookup is by digest; compare_digest keeps the final check constant-time.
    if row is None or not hmac.compare_digest(row[1], wanted):
        refuse(client_ip, raw_key[:DISPLAY_CHARS])
    key_id, _digest, account_id, suspended, plan_code, plan_tier, rpm, last_used, admin, ends = row
    if last_used is None or last_used < datetime.now(UTC) - LAST_USED_RESOLUTION:
        _touch(session, key_id)
    return Caller(
        account_id,
        key_id,
        plan_code,
        plan_tier or 0,
        suspended,
        int(rpm),
        bool(admin),
        ends.timestamp() if ends is not None else None,
    )


def _touch(session: Session, key_id: int) -> None:
    now = datetime.now(UTC)
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


def refuse(client_ip: str, shown: str) -> NoReturn:
    # One stable, greppable line per refusal (fail2ban reads it).
    security_log.warning("resayil-auth-failure kind=api_key ip=%s key_prefix=%s", client_ip, shown)
    raise AuthenticationFailed(
        "Incorrect API key provided. You can find your API keys in your Resayil dashboard."
    )
