"""Users and their accounts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.accounts import passwords
from portal.accounts.passwords import hash_password
from portal.accounts.phones import InvalidPhone, normalise_phone
from portal.exceptions import AuthenticationFailed, InvalidRequest, NotFound
from portal.translatable import N_
from schema import audit, ledger
from schema.models import Account, Membership, Plan, User


class AlreadyRegistered(InvalidRequest):
    code = "already_registered"


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"


# Deliberately loose: the mailbox proves an address, a pattern cannot.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
WRONG_LOGIN = N_("The email or password is incorrect.")


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
    plan_days: int = 0,
) -> Registered:
    """`plan_days` > 0 ends the plan after that many days (a trial); 0 = it does not end."""
    email = valid_email(email)
    phone = valid_phone(phone)
    valid_password(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AlreadyRegistered(N_("This email is already registered."), param="email")
    if session.scalar(select(User.id).where(User.phone == phone)) is not None:
        raise AlreadyRegistered(N_("This phone number is already registered."), param="phone")
    plan_id = _plan_id(session, plan_code)
    user = User(
        email=email,
        phone=phone,
        password_hash=hash_password(password),
        is_admin=admin,
        language=language,
    )
    ends = datetime.now(UTC) + timedelta(days=plan_days) if plan_id and plan_days else None
    account = Account(name=email, plan_id=plan_id, plan_expires_at=ends, credit_balance=0)
    session.add_all([user, account])
    session.flush()
    session.add(Membership(account_id=account.id, user_id=user.id, role="owner"))
    if credits:
        ledger.grant(
            session, account_id=account.id, amount=credits, kind="grant", reason="initial credits"
        )
    return Registered(user.id, account.id, email, phone, plan_code, credits)


def register(
    session: Session,
    *,
    email: str,
    phone: str,
    password: str,
    language: str,
    plan_code: str | None,
    credits: int,
    trial_days: int = 0,
) -> Registered:
    """A visitor signs up: their own account, with the configured trial plan and credits."""
    try:
        with session.begin_nested():
            return create_user(
                session,
                email=email,
                phone=phone,
                password=password,
                plan_code=plan_code,
                credits=credits,
                language=language,
                plan_days=trial_days,
            )
    except IntegrityError as error:
        # Someone registered the same email or phone between our check and our insert.
        raise AlreadyRegistered(N_("This email or phone number is already registered.")) from error


def valid_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidRequest(
            N_("Enter a valid email address."), param="email", code="invalid_email"
        )
    return email


def valid_phone(phone: str) -> str:
    try:
        return normalise_phone(phone)
    except InvalidPhone as error:
        raise InvalidRequest(
            N_("Enter a valid phone number, for example +965 5000 0000."),
            param="phone",
            code="invalid_phone",
        ) from error


def valid_password(password: str, *, param: str = "password") -> None:
    if len(password) < passwords.MIN_LENGTH:
        raise InvalidRequest(
            N_("Use at least 8 characters for your password."), param=param, code="weak_password"
        )
    if len(password) > passwords.MAX_LENGTH:
        raise InvalidRequest(
            N_("Use at most 256 characters for your password."), param=param, code="weak_password"
        )


@dataclass(frozen=True)
class Identity:
    user_id: int
    account_id: int
    email: str
    language: str


def check_credentials(session: Session, *, email: str, password: str) -> Identity:
    """The user whose email and password these are; one error for any mismatch.

    An unknown email costs a full argon2 verification too, so neither the message nor
    the time taken tells whether an email is registered.
    """
    row = session.execute(
        select(User.id, User.password_hash, User.language, Membership.account_id)
        .join(Membership, Membership.user_id == User.id)
        .where(User.email == email.strip().lower(), Membership.role == "owner")
    ).first()
    matches = passwords.verify_password(row[1] if row else None, password)
    if row is None or not matches:
        raise InvalidCredentials(WRONG_LOGIN)
    return Identity(row[0], row[3], email.strip().lower(), row[2])


def change_password(session: Session, *, user_id: int, current: str, new: str) -> None:
    password_hash = session.scalar(select(User.password_hash).where(User.id == user_id))
    if not passwords.verify_password(password_hash, current):
        raise InvalidRequest(
            N_("Your current password is not correct."),
            param="current_password",
            code="wrong_password",
        )
    valid_password(new, param="new_password")
    session.execute(update(User).where(User.id == user_id).values(password_hash=hash_password(new)))
    audit.record(
        session,
        actor=f"user:{user_id}",
        action="user.password_changed",
        target_type="user",
        target_id=user_id,
        details={},
    )


def set_language(session: Session, *, user_id: int, language: str) -> None:
    session.execute(update(User).where(User.id == user_id).values(language=language))


@dataclass(frozen=True)
class Profile:
    user_id: int
    account_id: int
    email: str
    phone: str
    language: str
    plan_code: str | None
    plan_name_en: str | None
    plan_name_ar: str | None
    requests_per_minute: int | None

    def plan_name(self, language: str) -> str | None:
        return self.plan_name_ar if language == "ar" else self.plan_name_en


def profile(session: Session, *, user_id: int, account_id: int) -> Profile:
    row = session.execute(
        select(
            User.email,
            User.phone,
            User.language,
            Plan.code,
            Plan.name_en,
            Plan.name_ar,
            Plan.requests_per_minute,
        )
        .select_from(User)
        .join(Membership, Membership.user_id == User.id)
        .join(Account, Account.id == Membership.account_id)
        .outerjoin(Plan, Plan.id == Account.plan_id)
        .where(User.id == user_id, Account.id == account_id)
    ).first()
    if row is None:
        raise NotFound(N_("No such account."), code="account_not_found")
    return Profile(user_id, account_id, *row)


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
