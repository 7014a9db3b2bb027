"""The billing jobs as the RQ worker runs them: settings from the environment, a real
PostgreSQL, and MyFatoorah's double over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from portal.accounts.service import create_user
from portal.billing.myfatoorah import MyFatoorahClient
from portal.billing.orders import create_order, find_product, invoice_request
from resayil import jobs
from resayil.background import PERIODIC
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from schema.models import Account, BillingEvent, Order, User
from simulator.myfatoorah.cards import SUCCESS_CARDS
from simulator.myfatoorah.harness import MyFatoorahDouble
from tests.databases import Sessions
from tests.phones import unused_phone
from tests.services import PostgresServer


@pytest.fixture
def sessions(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sessions]:
    upgrade(postgres_server.url)
    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    engine = make_engine(postgres_server.url)
    yield make_session_factory(engine)
    engine.dispose()


def new_account(sessions: Sessions, plan: str | None = "basic") -> tuple[int, int]:
    with sessions() as session, session.begin():
        made = create_user(
            session,
            email=f"job-{uuid.uuid4().hex[:10]}@example.com",
            phone=unused_phone(),
            password="a long passphrase",
            plan_code=plan,
        )
        return made.account_id, made.user_id


def test_every_periodic_job_names_a_real_function() -> None:
    for job in PERIODIC:
        module, name = job.path.rsplit(".", 1)
        assert module == "resayil.jobs"
        assert callable(getattr(jobs, name))


def test_reconcile_payments_pays_an_order_nobody_confirmed(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MyFatoorahDouble() as double:
        monkeypatch.setenv("MYFATOORAH_BASE_URL", double.url)
        monkeypatch.setenv("MYFATOORAH_TOKEN", double.state.config.token)
        account = new_account(sessions)
        with sessions() as session, session.begin():
            product = find_product(session, item="pack:5k")
            order = create_order(
                session, account_id=account[0], user_id=account[1], product=product, language="ar"
            )
            fields = invoice_request(
                order=order,
                product=product,
                customer=session.get_one(User, account[1]),
                public_base_url="http://x.test",
            )
            order_id = order.id
        client = MyFatoorahClient(base_url=double.url, token=double.state.config.token)
        created = client.send_payment(invoice=fields, amount_fils=5_000)
        client.close()
        with sessions() as session, session.begin():
            session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(
                    status="pending",
                    gateway_invoice_id=created.invoice_id,
                    next_check_at=datetime.now(UTC) - timedelta(seconds=1),
                )
            )
        double.state.pay(int(created.invoice_id), SUCCESS_CARDS[0])

        done = jobs.reconcile_payments()

    assert done is not None
    assert [o.order_id for o in done.outcomes if o.newly_paid] == [order_id]
    with sessions() as session:
        assert session.get_one(Order, order_id).status == "paid"
        assert session.get_one(Account, account[0]).credit_balance == 5_000


def test_reconcile_payments_does_nothing_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYFATOORAH_TOKEN", "")
    assert jobs.reconcile_payments() is None


def test_announce_plan_endings_records_each_ending_once(sessions: Sessions) -> None:
    account = new_account(sessions)
    with sessions() as session, session.begin():
        session.get_one(Account, account[0]).plan_expires_at = datetime.now(UTC) + timedelta(
            hours=5
        )
    jobs.announce_plan_endings()
    jobs.announce_plan_endings()
    with sessions() as session:
        kinds = session.scalars(
            select(BillingEvent.kind).where(BillingEvent.account_id == account[0])
        ).all()
    assert kinds == ["subscription_expiring"]
