"""The dashboard's figures for a logged-in user, read in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import anyio

from broker.sessions import WebSession
from portal.accounts import service as accounts
from portal.accounts.service import Profile
from portal.keys import service as keys
from portal.keys.service import KeyView
from portal.state import AppState
from portal.usage import service as usage
from portal.usage.service import Balance, UsageReport


@dataclass(frozen=True)
class Dashboard:
    profile: Profile
    balance: Balance
    usage: UsageReport
    keys: list[KeyView]


async def usage_report(state: AppState, session: WebSession) -> UsageReport:
    def read() -> UsageReport:
        with state.sessions() as db:
            return usage.usage_report(
                db,
                account_id=session.account_id,
                now=datetime.now(UTC),
                tz=ZoneInfo(state.settings.report_timezone),
            )

    return await anyio.to_thread.run_sync(read)


async def dashboard(state: AppState, session: WebSession) -> Dashboard:
    def read() -> Dashboard:
        with state.sessions() as db:
            return Dashboard(
                profile=accounts.profile(
                    db, user_id=session.user_id, account_id=session.account_id
                ),
                balance=usage.balance(db, account_id=session.account_id),
                usage=usage.usage_report(
                    db,
                    account_id=session.account_id,
                    now=datetime.now(UTC),
                    tz=ZoneInfo(state.settings.report_timezone),
                ),
                keys=keys.list_keys(db, account_id=session.account_id),
            )

    return await anyio.to_thread.run_sync(read)
