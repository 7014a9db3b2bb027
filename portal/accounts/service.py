"""Users and their accounts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.accounts.passwords import hash_password
from portal.accounts.phones import normalise_phone
from portal.exceptions import InvalidRequest, NotFound
from schema import audit, ledger
from schema.models import Account, Membership, Plan, User


class AlreadyRegistered(InvalidRequest):
    code = "already_registered"


@dataclass(frozen=True)
class Registered:
    user_id: int
    account_id: int
    email: str
    phone: str
    plan: str | None
    credits: int


def create_user(
    session: Session,
    *,
    email: str,
    phone: str,
    password: str,
    plan_code: str | None,
    credits: int = 0,
    admin: bool = False,
    language: str = "en",
) -> Registered:
    email = email.strip().lower()
    phone = normalise_phone(phone)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AlreadyRegistered("This email is already registered.", param="email")
    if session.scalar(select(User.id).where(User.phone == phone)) is not None:
        raise AlreadyRegistered("This phone number is already registered.", param="phone")
    plan_id = _plan_id(session, plan_code)
    user = User(
        email=email,
        phone=phone,
        password_hash=hash_password(password),
        is_admin=admin,
        language=language,
    )
    account = Account(name=email, plan_id=plan_id, credit_balance=0)
    session.add_all([user, account])
    session.flush()
    session.add(Membership(account_id=account.id, user_id=user.id, role="owner"))
    if credits:
        ledger.grant(
            session, account_id=account.id, amount=credits, kind="grant", reason="initial credits"
        )
    return Registered(user.id, account.id, email, phone, plan_code, credits)


def _plan_id(session: Session, plan_code: str | None) -> int | None:
    if plan_code is None:
        return None
    plan_id = session.scalar(select(Plan.id).where(Plan.code == plan_code))
    if plan_id is None:
        raise NotFound(f"No plan '{plan_code}'.", code="plan_not_found", param="plan")
    return plan_id


def owned_account(session: Session, *, email: str) -> tuple[int, int]:
    """(user id, account id) of the account the user with this email owns."""
    row = session.execute(
        select(User.id, Membership.account_id)
        .join(Membership, Membership.user_id == User.id)
        .where(User.email == email.strip().lower(), Membership.role == "owner")
    ).first()
    if row is None:
        raise NotFound(f"No user with email '{email}'.", code="user_not_found", param="email")
    return row[0], row[1]


def set_rate_limit(session: Session, *, email: str, rpm: int | None, actor: str) -> int:
    """Override an account's requests per minute (0 = unlimited, None = the plan's)."""
    _user_id, account_id = owned_account(session, email=email)
    set_account_rate_limit(session, account_id=account_id, rpm=rpm, actor=actor)
    return account_id


def set_account_rate_limit(
    session: Session, *, account_id: int, rpm: int | None, actor: str
) -> None:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account {account_id}.", code="account_not_found")
    audit.record(
        session,
        actor=actor,
        action="account.rate_limit_set",
        target_type="account",
        target_id=account_id,
        details={"from": account.rpm_override, "to": rpm},
    )
    account.rpm_override = rpm
