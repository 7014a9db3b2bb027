"""Billing for a logged-in member and for MyFatoorah's calls, shared by the JSON API
and the pages. The blocking work (database, MyFatoorah's API) runs in worker threads.

After an order is paid the account's cached API keys are dropped, so a new plan or
end date applies from the very next API request.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from broker.sessions import WebSession
from portal.billing import history, invoices, notices, orders, subscriptions
from portal.billing.confirmation import Outcome, confirm_quietly
from portal.billing.history import OrderView
from portal.billing.orders import Checkout
from portal.billing.subscriptions import Subscription
from portal.catalog.offers import Offers, current_offers
from portal.state import AppState
from portal.usage.service import Balance
from portal.usage.service import balance as balance_of
from schema.models._time import utcnow


@dataclass(frozen=True)
class Overview:
    subscription: Subscription
    balance: Balance
    offers: Offers
    recent: list[OrderView]


async def overview(state: AppState, member: WebSession) -> Overview:
    def read() -> Overview:
        with state.sessions() as db:
            return Overview(
                subscriptions.subscription(
                    db,
                    account_id=member.account_id,
                    now=utcnow(),
                    notice=state.settings.expiry_notice,
                ),
                balance_of(db, account_id=member.account_id),
                current_offers(db),
                history.list_orders(db, account_id=member.account_id, limit=5),
            )

    return await anyio.to_thread.run_sync(read)


async def offers(state: AppState) -> Offers:
    def read() -> Offers:
        with state.sessions() as db:
            return current_offers(db)

    return await anyio.to_thread.run_sync(read)


async def check_out(state: AppState, member: WebSession, item: str) -> Checkout:
    return await anyio.to_thread.run_sync(
        lambda: orders.check_out(
            state.sessions,
            state.payments,
            account_id=member.account_id,
            user_id=member.user_id,
            item=item,
            language=member.language,
            public_base_url=state.settings.public_base_url,
            recheck_after=state.settings.payment_recheck,
        )
    )


async def _confirm(state: AppState, *, key: str, key_type: str) -> Outcome | None:
    client = state.payments
    if client is None:
        return None
    outcome = await anyio.to_thread.run_sync(
        lambda: confirm_quietly(
            state.sessions,
            client,
            key=key,
            key_type=key_type,
            recheck_after=state.settings.payment_recheck,
        )
    )
    if outcome is not None and outcome.newly_paid and outcome.account_id is not None:
        await state.auth_cache.revoke_account(outcome.account_id)
    return outcome


async def returned_from_payment(state: AppState, payment_id: str) -> Outcome | None:
    """The customer's browser came back with `paymentId`: ask MyFatoorah what happened."""
    return await _confirm(state, key=payment_id, key_type="PaymentId")


async def webhook(state: AppState, raw: bytes, signature: str | None) -> bool:
    """Verify and record a webhook; confirm its invoice when it is new. True if new."""
    notice = notices.read_webhook(raw, signature, state.settings.myfatoorah_webhook_secret)

    def record() -> bool:
        with state.sessions() as db, db.begin():
            return notices.record(db, notice)

    new = await anyio.to_thread.run_sync(record)
    if new and notice.invoice_id:
        await _confirm(state, key=notice.invoice_id, key_type="InvoiceId")
    return new


async def list_own(state: AppState, member: WebSession) -> list[OrderView]:
    def read() -> list[OrderView]:
        with state.sessions() as db:
            return history.list_orders(db, account_id=member.account_id)

    return await anyio.to_thread.run_sync(read)


async def find_own(state: AppState, member: WebSession, order_id: int) -> OrderView:
    def read() -> OrderView:
        with state.sessions() as db:
            return history.find_order(db, account_id=member.account_id, order_id=order_id)

    return await anyio.to_thread.run_sync(read)


async def invoice_pdf(state: AppState, member: WebSession, number: str) -> tuple[str, bytes]:
    def render() -> tuple[str, bytes]:
        with state.sessions() as db:
            return invoices.invoice_pdf(db, account_id=member.account_id, number=number)

    return await anyio.to_thread.run_sync(render)
