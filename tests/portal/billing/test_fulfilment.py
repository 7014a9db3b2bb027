"""Applying MyFatoorah's answer to orders, straight against both databases: exactly once,
SUCCESS final, mismatches held, renewals extending, events recorded once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.accounts.service import create_user
from portal.billing import subscriptions
from portal.billing.confirmation import Outcome, apply_status
from portal.billing.myfatoorah import PaymentStatus, Transaction
from portal.billing.orders import create_order, find_product
from portal.keys.service import Caller
from schema.models import (
    Account,
    AdminAlert,
    BillingEvent,
    CreditEntry,
    Invoice,
    Order,
)
from tests.databases import Sessions, race
from tests.phones import unused_phone

RECHECK = timedelta(minutes=1)


def new_account(
    sessions: Sessions, *, plan: str | None = None, credits: int = 0
) -> tuple[int, int]:
    with sessions() as session, session.begin():
        made = create_user(
            session,
            email=f"b{uuid.uuid4().hex[:12]}@example.com",
            phone=unused_phone(),
            password="a long passphrase",
            plan_code=plan,
            credits=credits,
        )
        return made.account_id, made.user_id


def new_order(sessions: Sessions, account: tuple[int, int], item: str) -> tuple[int, str]:
    """A pending order with its MyFatoorah invoice id, as check-out leaves it."""
    invoice_id = str(uuid.uuid4().int % 10**9)
    with sessions() as session, session.begin():
        order = create_order(
            session,
            account_id=account[0],
            user_id=account[1],
            product=find_product(session, item=item),
            language="en",
        )
        order_id = order.id
        order.status, order.gateway_invoice_id = "pending", invoice_id
    return order_id, invoice_id


def amount_of(sessions: Sessions, order_id: int) -> Decimal:
    with sessions() as session:
        return Decimal(session.get_one(Order, order_id).amount_fils) / 1000


def status(
    invoice_id: str,
    order_id: int,
    value: Decimal,
    *transactions: tuple[str, str],
    display: str | None = None,
) -> PaymentStatus:
    """GetPaymentStatus's answer: transactions as (TransactionStatus, ErrorCode)."""
    paid = any(t[0] == "Succss" for t in transactions)
    return PaymentStatus(
        invoice_id=invoice_id,
        invoice_status="Paid" if paid else "Pending",
        customer_reference=str(order_id),
        invoice_value=value,
        display_value=display if display is not None else f"{value:,.3f} KD",
        transactions=tuple(
            Transaction(f"0707{invoice_id}{i:04d}", state, code, "KNET")
            for i, (state, code) in enumerate(transactions)
        ),
    )


def apply(sessions: Sessions, payment: PaymentStatus) -> Outcome:
    with sessions() as session, session.begin():
        return apply_status(session, payment, now=datetime.now(UTC), recheck_after=RECHECK)


def balance_and_ledger(sessions: Sessions, account_id: int) -> tuple[int, int]:
    with sessions() as session:
        balance = session.get_one(Account, account_id).credit_balance
        total = session.scalar(
            select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
                CreditEntry.account_id == account_id
            )
        )
        return balance, int(total or 0)


def events_of(sessions: Sessions, account_id: int) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(BillingEvent.kind)
                .where(BillingEvent.account_id == account_id)
                .order_by(BillingEvent.id)
            )
        )


def test_a_paid_pack_credits_once_with_an_invoice_and_an_event(sessions: Sessions) -> None:
    account = new_account(sessions, plan="basic", credits=10)
    order_id, invoice_id = new_order(sessions, account, "pack:15k")
    paid = status(invoice_id, order_id, amount_of(sessions, order_id), ("Succss", ""))

    first, second = apply(sessions, paid), apply(sessions, paid)

    assert (first.status, first.newly_paid) == ("paid", True)
    assert (second.status, second.newly_paid) == ("paid", False)
    assert balance_and_ledger(sessions, account[0]) == (15_010, 15_010)
    with sessions() as session:
        invoices = session.scalars(select(Invoice).where(Invoice.order_id == order_id)).all()
        assert [i.amount_fils for i in invoices] == [13_500]
        assert invoices[0].number.startswith("INV-")
        order = session.get_one(Order, order_id)
        assert order.payment_id == paid.transactions[0].payment_id
    assert events_of(sessions, account[0]) == ["topup_purchased"]


def test_a_failure_changes_nothing_and_a_later_success_overrides_it(sessions: Sessions) -> None:
    account = new_account(sessions, plan="basic")
    order_id, invoice_id = new_order(sessions, account, "pack:5k")
    value = amount_of(sessions, order_id)

    failed = apply(sessions, status(invoice_id, order_id, value, ("Failed", "MF004")))
    assert failed.status == "failed"
    assert balance_and_ledger(sessions, account[0]) == (0, 0)
    with sessions() as session:
        assert session.get_one(Order, order_id).failure_code == "MF004"

    paid = apply(sessions, status(invoice_id, order_id, value, ("Failed", "MF004"), ("Succss", "")))
    assert (paid.status, paid.newly_paid) == ("paid", True)
    # A failure reported after the success (out of order) does not undo it.
    late = apply(sessions, status(invoice_id, order_id, value, ("Succss", ""), ("Failed", "MF002")))
    assert late.status == "paid"
    assert balance_and_ledger(sessions, account[0]) == (5_000, 5_000)


@pytest.mark.parametrize(
    ("value", "display", "reason"),
    [
        (Decimal("0.500"), None, "amount_mismatch"),
        (None, "5.000 USD", "currency_mismatch"),
    ],
)
def test_a_payment_that_does_not_match_the_order_is_held_without_credits(
    sessions: Sessions, value: Decimal | None, display: str | None, reason: str
) -> None:
    account = new_account(sessions, plan="basic")
    order_id, invoice_id = new_order(sessions, account, "pack:5k")
    paid = status(
        invoice_id,
        order_id,
        value or amount_of(sessions, order_id),
        ("Succss", ""),
        display=display,
    )

    assert apply(sessions, paid).status == "review"
    assert apply(sessions, paid).status == "review"

    assert balance_and_ledger(sessions, account[0]) == (0, 0)
    with sessions() as session:
        assert session.get_one(Order, order_id).failure_code == reason
        alerts = session.scalars(
            select(AdminAlert).where(AdminAlert.day == f"o{order_id}"[:10])
        ).all()
        assert [a.kind for a in alerts] == [f"payment_{reason}"]


def test_a_payment_for_an_unknown_invoice_changes_nothing(sessions: Sessions) -> None:
    outcome = apply(sessions, status("999999999999", 0, Decimal("5.000"), ("Succss", "")))
    assert outcome == Outcome(None, None, "unknown")


def plan_end(sessions: Sessions, account_id: int) -> datetime:
    with sessions() as session:
        end = session.get_one(Account, account_id).plan_expires_at
        assert end is not None
        return end if end.tzinfo else end.replace(tzinfo=UTC)


def test_buying_the_same_plan_again_extends_it_from_its_end(sessions: Sessions) -> None:
    account = new_account(sessions)
    first_order, first_invoice = new_order(sessions, account, "plan:pro")
    value = amount_of(sessions, first_order)
    before = datetime.now(UTC)
    apply(sessions, status(first_invoice, first_order, value, ("Succss", "")))
    first_end = plan_end(sessions, account[0])
    assert before + timedelta(days=30) <= first_end <= datetime.now(UTC) + timedelta(days=30)

    second_order, second_invoice = new_order(sessions, account, "plan:pro")
    apply(sessions, status(second_invoice, second_order, value, ("Succss", "")))

    assert plan_end(sessions, account[0]) == first_end + timedelta(days=30)
    assert balance_and_ledger(sessions, account[0]) == (10_000, 10_000)
    assert events_of(sessions, account[0]) == ["subscription_activated", "subscription_renewed"]


def test_another_plan_or_an_ended_one_starts_a_fresh_period(sessions: Sessions) -> None:
    account = new_account(sessions, plan="pro")
    with sessions() as session, session.begin():
        session.get_one(Account, account[0]).plan_expires_at = datetime.now(UTC) - timedelta(days=2)
    order_id, invoice_id = new_order(sessions, account, "plan:pro")
    before = datetime.now(UTC)
    apply(sessions, status(invoice_id, order_id, amount_of(sessions, order_id), ("Succss", "")))
    assert plan_end(sessions, account[0]) >= before + timedelta(days=30)
    assert events_of(sessions, account[0]) == ["subscription_activated"]

    order_id, invoice_id = new_order(sessions, account, "plan:enterprise")
    before = datetime.now(UTC)
    apply(sessions, status(invoice_id, order_id, amount_of(sessions, order_id), ("Succss", "")))
    end = plan_end(sessions, account[0])
    assert before + timedelta(days=30) <= end <= datetime.now(UTC) + timedelta(days=30)
    with sessions() as session:
        assert session.get_one(Account, account[0]).plan_id == 3


def test_concurrent_confirmations_of_one_invoice_credit_once(sessions: Sessions) -> None:
    account = new_account(sessions)
    order_id, invoice_id = new_order(sessions, account, "pack:50k")
    paid = status(invoice_id, order_id, amount_of(sessions, order_id), ("Succss", ""))

    results = race(8, lambda _: apply(sessions, paid))

    outcomes = [r for r in results if isinstance(r, Outcome)]
    assert len(outcomes) == 8, results  # nobody failed: the losers just see it paid
    assert sum(o.newly_paid for o in outcomes) == 1
    assert balance_and_ledger(sessions, account[0]) == (50_000, 50_000)
    assert events_of(sessions, account[0]) == ["topup_purchased"]


def test_the_sweep_announces_an_ending_once_and_then_the_end(sessions: Sessions) -> None:
    account = new_account(sessions, plan="basic")
    now = datetime.now(UTC)
    ends = now + timedelta(days=2)
    with sessions() as session, session.begin():
        session.get_one(Account, account[0]).plan_expires_at = ends
    notice = timedelta(days=3)

    for _ in range(2):
        with sessions() as session, session.begin():
            subscriptions.sweep(session, now=now, notice=notice)
    assert events_of(sessions, account[0]) == ["subscription_expiring"]
    with sessions() as session:
        view = subscriptions.subscription(session, account_id=account[0], now=now, notice=notice)
    assert (view.status, view.plan_code) == ("ending", "basic")

    later = ends + timedelta(minutes=1)
    for _ in range(2):
        with sessions() as session, session.begin():
            subscriptions.sweep(session, now=later, notice=notice)
    assert events_of(sessions, account[0]) == ["subscription_expiring", "subscription_expired"]
    with sessions() as session:
        view = subscriptions.subscription(session, account_id=account[0], now=later, notice=notice)
        assert view.status == "expired"
        assert not view.usable


def test_an_expired_callers_plan_is_not_served() -> None:
    caller = Caller(1, 1, "pro", 2, False, 30, plan_expires_at=1_000.0)
    assert caller.active_plan(999.9) == "pro"
    assert caller.active_plan(1_000.0) is None
    assert Caller(1, 1, "pro", 2, False, 30).active_plan(10**12) == "pro"
