"""What the member pages and the account API show of a logged-in user, read in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy.orm import Session

from broker.sessions import WebSession
from portal.accounts import service as accounts
from portal.accounts.service import Profile
from portal.billing import subscriptions
from portal.billing.subscriptions import Subscription
from portal.keys import service as keys
from portal.keys.service import KeyView
from portal.state import AppState
from portal.usage import service as usage
from portal.usage.service import Balance, UsageReport


@dataclass(frozen=True)
class Dashboard:
    profile: Profile
    balance: Balance
    subscription: Subscription
    usage: UsageReport
    keys: list[KeyView]


@dataclass(frozen=True)
class Summary:
    profile: Profile
    balance: Balance
    subscription: Subscription


def _usage(db: Session, state: AppState, session: WebSession) -> UsageReport:
    return usage.usage_report(
        db,
        account_id=session.account_id,
        now=datetime.now(UTC),
        tz=ZoneInfo(state.settings.report_timezone),
    )


def _summary(db: Session, state: AppState, session: WebSession) -> Summary:
    return Summary(
        profile=accounts.profile(db, user_id=session.user_id, account_id=session.account_id),
        balance=usage.balance(db, account_id=session.account_id),
        subscription=subscriptions.subscription(
            db,
            account_id=session.account_id,
            now=datetime.now(UTC),
            notice=state.settings.expiry_notice,
        ),
    )


async def usage_report(state: AppState, session: WebSession) -> UsageReport:
    def read() -> UsageReport:
        with state.sessions() as db:
            return _usage(db, state, session)

    return await anyio.to_thread.run_sync(read)


async def summary(state: AppState, session: WebSession) -> Summary:
    """Who the member is, their plan and balance: what the billing page and /api/account show."""

    def read() -> Summary:
        with state.sessions() as db:
            return _summary(db, state, session)

    return await anyio.to_thread.run_sync(read)


async def dashboard(state: AppState, session: WebSession) -> Dashboard:
    def read() -> Dashboard:
        with state.sessions() as db:
            account = _summary(db, state, session)
            return Dashboard(
                profile=account.profile,
                balance=account.balance,
                subscription=account.subscription,
                usage=_usage(db, state, session),
                keys=keys.list_keys(db, account_id=session.account_id),
            )

    return await anyio.to_thread.run_sync(read)
