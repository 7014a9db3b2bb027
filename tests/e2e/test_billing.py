"""Buying plans and packs end to end: api process -> MyFatoorah double (a real HTTP server)
-> callback and webhooks -> exactly one fulfilment, on PostgreSQL and SQLite.

Webhooks from the double go to the api's /api/billing/webhook, signed (v2 by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select, update

from portal.billing.myfatoorah import MyFatoorahClient
from portal.billing.reconcile import reconcile
from schema.models import Account, BillingEvent, Order, PaymentNotice, User
from simulator.myfatoorah.cards import FAILURE_CARDS, SUCCESS_CARDS
from simulator.myfatoorah.state import MyFatoorahState
from simulator.myfatoorah.validation import Lookup
from tests.portal.people import Member, register
from tests.stack import Stack

SIGNUP_CREDITS = 25
PACK_15K = 15_000
CARD = SUCCESS_CARDS[0]


@pytest.fixture
def mf(stack: Stack) -> Iterator[MyFatoorahState]:
    """The double's state; back to its first configuration after the test."""
    assert stack.myfatoorah is not None
    state = stack.myfatoorah.state
    yield state
    state.wait_for_webhooks(timeout=10)
    state.reset()


@pytest.fixture
def member(stack: Stack) -> Iterator[Member]:
    made = register(stack.api_url)
    yield made
    made.http.close()


@pytest.fixture
def other_member(stack: Stack) -> Iterator[Member]:
    made = register(stack.api_url, language="ar")
    yield made
    made.http.close()


def account_id(member: Member) -> int:
    response = member.http.get("/api/account", headers=member.bearer())
    assert response.status_code == 200, response.text
    return int(response.json()["account_id"])


def order(member: Member, item: str) -> tuple[int, int]:
    """(our order id, MyFatoorah's invoice id) for a new order."""
    response = member.http.post("/api/billing/orders", json={"item": item}, headers=member.bearer())
    assert response.status_code == 201, response.text
    body = response.json()
    return body["order_id"], int(body["payment_url"].rstrip("/").rsplit("/", 1)[-1])


def come_back(member: Member, redirect_url: str) -> httpx.Response:
    """The browser following MyFatoorah's redirect to our callback."""
    response = member.http.get(redirect_url)
    assert response.status_code == 303, response.text
    return response


def order_of(member: Member, order_id: int) -> dict[str, Any]:
    response = member.http.get(f"/api/billing/orders/{order_id}", headers=member.bearer())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def books_balance(stack: Stack, account: int) -> int:
    balance = stack.balance(account)
    assert balance == stack.ledger_sum(account)
    return balance


def events(stack: Stack, account: int) -> list[str]:
    with stack.session() as session:
        return list(
            session.scalars(
                select(BillingEvent.kind)
                .where(BillingEvent.account_id == account)
                .order_by(BillingEvent.id)
            )
        )


def test_a_pack_paid_by_card_is_credited_once_with_an_invoice(
    stack: Stack, mf: MyFatoorahState, member: Member, other_member: Member
) -> None:
    account = account_id(member)
    order_id, invoice_id = order(member, "pack:15k")
    assert order_of(member, order_id)["status"] == "pending"

    paid = mf.pay(invoice_id, CARD)
    landed = come_back(member, paid.redirect_url)
    come_back(member, paid.redirect_url)  # a reload of the return page
    assert mf.wait_for_webhooks()

    assert landed.headers["location"] == f"/billing/orders/{order_id}"
    seen = order_of(member, order_id)
    assert (seen["status"], seen["amount_kwd"], seen["credits"]) == ("paid", "13.500", PACK_15K)
    assert books_balance(stack, account) == SIGNUP_CREDITS + PACK_15K
    assert events(stack, account) == ["topup_purchased"]

    pdf = member.http.get(
        f"/api/billing/invoices/{seen['invoice_number']}", headers=member.bearer()
    )
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    # Nobody else's: the other member gets "not found" for the order and the invoice.
    for path in (
        f"/api/billing/orders/{order_id}",
        f"/api/billing/invoices/{seen['invoice_number']}",
    ):
        assert other_member.http.get(path, headers=other_member.bearer()).status_code == 404


def test_a_declined_card_changes_nothing_and_a_retry_that_succeeds_pays(
    stack: Stack, mf: MyFatoorahState, member: Member
) -> None:
    account = account_id(member)
    order_id, invoice_id = order(member, "pack:5k")

    declined = mf.pay(invoice_id, FAILURE_CARDS["MF004"])
    come_back(member, declined.redirect_url)
    failed = order_of(member, order_id)
    assert (failed["status"], failed["failure_code"]) == ("failed", "MF004")
    assert "funds" in failed["failure_message"]
    assert failed["payment_url"]  # it can be paid again
    assert books_balance(stack, account) == SIGNUP_CREDITS

    come_back(member, mf.pay(invoice_id, CARD).redirect_url)
    assert order_of(member, order_id)["status"] == "paid"
    assert mf.wait_for_webhooks()
    assert books_balance(stack, account) == SIGNUP_CREDITS + 5_000


def test_the_webhook_alone_fulfils_an_order_whose_customer_never_came_back(
    stack: Stack, mf: MyFatoorahState, member: Member
) -> None:
    account = account_id(member)
    order_id, invoice_id = order(member, "pack:5k")
    mf.pay(invoice_id, CARD)
    assert mf.wait_for_webhooks()
    assert order_of(member, order_id)["status"] == "paid"
    assert books_balance(stack, account) == SIGNUP_CREDITS + 5_000


@pytest.mark.parametrize("version", [1, 2])
def test_replayed_forged_and_reordered_webhooks(
    stack: Stack, mf: MyFatoorahState, member: Member, version: int
) -> None:
    account = account_id(member)
    mf.configure(hold_webhooks=True, webhook_version=version, duplicate_webhooks=2)
    order_id, invoice_id = order(member, "pack:15k")
    mf.pay(invoice_id, FAILURE_CARDS["MF002"])
    mf.pay(invoice_id, CARD)

    forged = mf.deliver_forged(invoice_id)
    assert [d.status_code for d in forged] == [401]
    assert order_of(member, order_id)["status"] == "pending"

    # The success arrives first, then its duplicate, then the older failure.
    delivered = mf.release_webhooks(order="reverse")
    assert [d.status_code for d in delivered] == [200, 200, 200, 200]
    assert order_of(member, order_id)["status"] == "paid"
    assert books_balance(stack, account) == SIGNUP_CREDITS + PACK_15K

    # A replay of a genuine, signed webhook: recognised, nothing more.
    replayed = httpx.post(
        f"{stack.api_url}/api/billing/webhook",
        content=delivered[0].body,
        headers={
            "MyFatoorah-Signature": delivered[0].signature,
            "content-type": "application/json",
        },
    )
    assert replayed.status_code == 200
    assert replayed.json() == {"received": True, "duplicate": True}
    assert books_balance(stack, account) == SIGNUP_CREDITS + PACK_15K
    with stack.session() as session:
        notices = session.scalars(
            select(PaymentNotice.source).where(PaymentNotice.gateway_invoice_id == str(invoice_id))
        ).all()
    assert sorted(notices) == [f"webhook_v{version}"] * 2  # the failure and the success


def test_a_webhook_whose_body_was_changed_is_refused(stack: Stack) -> None:
    body = b'{"Event":{"Code":1,"Reference":"WH-1"},"Data":{"Invoice":{"Id":"1","Status":"PAID"}}}'
    for signature in (None, "", "c+rTI8/6pMWYrglboAwcjU1TBhP8teF7UycJl98xmkw="):
        headers = {"MyFatoorah-Signature": signature} if signature is not None else {}
        response = httpx.post(f"{stack.api_url}/api/billing/webhook", content=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    broken = httpx.post(f"{stack.api_url}/api/billing/webhook", content=b"{not json")
    assert broken.status_code == 400


def test_concurrent_callbacks_and_webhooks_for_one_invoice_credit_once(
    stack: Stack, mf: MyFatoorahState, member: Member
) -> None:
    account = account_id(member)
    mf.configure(hold_webhooks=True, duplicate_webhooks=3)
    order_id, invoice_id = order(member, "pack:50k")
    paid = mf.pay(invoice_id, CARD)

    def come_back_again(_: int) -> int:
        with httpx.Client(cookies=member.http.cookies) as browser:
            return browser.get(paid.redirect_url).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        webhooks = pool.submit(mf.release_webhooks)
        statuses = list(pool.map(come_back_again, range(10)))
        assert [d.status_code for d in webhooks.result()] == [200, 200, 200]
    assert statuses == [303] * 10
    assert order_of(member, order_id)["status"] == "paid"
    assert books_balance(stack, account) == SIGNUP_CREDITS + 50_000
    assert events(stack, account) == ["topup_purchased"]


def test_when_myfatoorah_cannot_be_reached_the_order_waits_for_the_reconciliation_job(
    stack: Stack, mf: MyFatoorahState, member: Member
) -> None:
    account = account_id(member)
    mf.configure(hold_webhooks=True)
    order_id, invoice_id = order(member, "pack:5k")
    paid = mf.pay(invoice_id, CARD)
    mf.inject_fault("down", count=1)

    come_back(member, paid.redirect_url)
    assert order_of(member, order_id)["status"] == "pending"
    assert books_balance(stack, account) == SIGNUP_CREDITS

    # The reconciliation job, once the order's next check is due.
    with stack.session() as session, session.begin():
        session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(next_check_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert stack.sessions is not None and stack.myfatoorah is not None
    client = MyFatoorahClient(base_url=stack.myfatoorah.url, token=mf.config.token, timeout_s=5)
    try:
        done = reconcile(stack.sessions, client, recheck_after=timedelta(minutes=1))
    finally:
        client.close()
    assert order_id in [o.order_id for o in done.outcomes if o.newly_paid]
    assert order_of(member, order_id)["status"] == "paid"
    assert books_balance(stack, account) == SIGNUP_CREDITS + 5_000


def test_checkout_when_myfatoorah_is_down_charges_nothing(
    stack: Stack, mf: MyFatoorahState, member: Member
) -> None:
    mf.inject_fault("500", count=1)
    response = member.http.post(
        "/api/billing/orders", json={"item": "plan:pro"}, headers=member.bearer()
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "payment_gateway_error"
    listed = member.http.get("/api/billing/orders", headers=member.bearer()).json()
    assert [(o["status"], o["failure_code"]) for o in listed] == [("failed", "gateway_error")]


@pytest.mark.parametrize(
    ("item", "status", "code"),
    [
        ("plan:platinum", 404, "item_not_found"),
        ("pack:1k", 404, "item_not_found"),
        ("credits please", 400, "invalid_item"),
    ],
)
def test_ordering_something_not_for_sale_is_a_clear_error(
    member: Member, item: str, status: int, code: str
) -> None:
    response = member.http.post("/api/billing/orders", json={"item": item}, headers=member.bearer())
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["param"] == "item"


def test_ordering_needs_a_session_and_the_csrf_header(stack: Stack, member: Member) -> None:
    anonymous = httpx.post(f"{stack.api_url}/api/billing/orders", json={"item": "pack:5k"})
    assert anonymous.status_code == 401
    cookie_only = member.http.post("/api/billing/orders", json={"item": "pack:5k"})
    assert cookie_only.status_code == 403
    assert member.http.get("/api/billing/orders", headers=member.bearer()).json() == []


def test_offers_list_plans_and_packs_with_kwd_prices(stack: Stack) -> None:
    offers = httpx.get(f"{stack.api_url}/api/billing/offers").json()
    plans = {p["code"]: p for p in offers["plans"]}
    assert plans["pro"]["price_kwd"] == "15.000"
    assert plans["pro"]["item"] == "plan:pro"
    assert plans["enterprise"]["priority"] > plans["pro"]["priority"] > plans["basic"]["priority"]
    assert "glm-4.7-flash" not in plans["pro"]["models"]
    assert [(p["code"], p["credits"]) for p in offers["packs"]] == [
        ("5k", 5_000),
        ("15k", 15_000),
        ("50k", 50_000),
    ]


def test_an_expired_plan_is_402_until_renewed_and_credits_are_kept(
    stack: Stack, mf: MyFatoorahState, client_for: Callable[..., openai.OpenAI]
) -> None:
    account = stack.new_account(plan="pro", credits=40)
    with stack.session() as session, session.begin():
        session.execute(
            update(Account)
            .where(Account.id == account.account_id)
            .values(plan_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    email = account.email
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(account.key).chat.completions.create(
            model="llama3.2:3b", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 402
    assert caught.value.code == "subscription_expired"
    body: Any = caught.value.body
    assert body["renew_url"].endswith("/billing")
    assert client_for(account.key).models.list().data == []
    assert books_balance(stack, account.account_id) == 40

    customer = httpx.Client(base_url=stack.api_url, timeout=30)
    login = customer.post(
        "/api/auth/login", json={"email": email, "password": "correct horse battery staple"}
    )
    assert login.status_code == 200, login.text
    bearer = {"authorization": f"Bearer {login.json()['token']}"}
    subscription = customer.get("/api/billing/subscription", headers=bearer).json()
    assert (subscription["plan"], subscription["status"]) == ("pro", "expired")

    placed = customer.post("/api/billing/orders", json={"item": "plan:pro"}, headers=bearer)
    invoice_id = int(placed.json()["payment_url"].rsplit("/", 1)[-1])
    customer.get(mf.pay(invoice_id, CARD).redirect_url)
    customer.close()

    renewed = client_for(account.key).chat.completions.create(
        model="llama3.2:3b", messages=[{"role": "user", "content": "hi"}]
    )
    assert renewed.choices[0].message.content
    assert mf.wait_for_webhooks()
    stack.wait_usage(account.account_id, 1)
    # 40 kept + 5,000 for the new period - 1 for the request.
    assert books_balance(stack, account.account_id) == 40 + 5_000 - 1
    with stack.session() as session:
        ends = session.get_one(Account, account.account_id).plan_expires_at
    assert ends is not None
    assert ends.replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(days=29)


def test_an_admin_refunds_a_paid_order_never_more_than_was_paid(
    stack: Stack, mf: MyFatoorahState, member: Member
) -> None:
    admin = stack.new_account(plan="pro", credits=0)
    with stack.session() as session, session.begin():
        session.get_one(User, admin.user_id).is_admin = True
    order_id, invoice_id = order(member, "pack:15k")
    come_back(member, mf.pay(invoice_id, CARD).redirect_url)

    def refund(amount: int | None, key: str = admin.key) -> httpx.Response:
        return httpx.post(
            f"{stack.api_url}/api/admin/orders/{order_id}/refund",
            json={"amount_fils": amount, "comment": "goodwill"},
            headers={"authorization": f"Bearer {key}"},
        )

    customer = stack.new_account(plan="pro", credits=0)
    assert refund(1_000, customer.key).status_code == 403
    first = refund(3_500)
    assert first.status_code == 200, first.text
    assert (first.json()["amount_fils"], first.json()["refunded_fils"]) == (3_500, 3_500)
    too_much = refund(10_001)
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (400, "refund_too_large")
    rest = refund(None)
    assert (rest.json()["amount_fils"], rest.json()["refunded_fils"]) == (10_000, 13_500)
    assert refund(1).status_code == 400
    at_myfatoorah = mf.refunds.find(Lookup(key=str(invoice_id), key_type="InvoiceId"))
    assert sorted(r.amount for r in at_myfatoorah) == [Decimal("3.500"), Decimal("10.000")]
    with stack.session() as session:
        assert session.get_one(Order, order_id).refunded_fils == 13_500


def test_a_refund_myfatoorah_refuses_is_given_back(
    stack: Stack, mf: MyFatoorahState, member: Member
) -> None:
    admin = stack.new_account(plan="pro", credits=0)
    with stack.session() as session, session.begin():
        session.get_one(User, admin.user_id).is_admin = True
    order_id, invoice_id = order(member, "pack:5k")
    come_back(member, mf.pay(invoice_id, CARD).redirect_url)
    assert mf.wait_for_webhooks()  # their confirmation must not meet the fault below
    mf.inject_fault("500", count=1)
    refused = httpx.post(
        f"{stack.api_url}/api/admin/orders/{order_id}/refund",
        json={"amount_fils": 5_000},
        headers={"authorization": f"Bearer {admin.key}"},
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "refund_failed")
    with stack.session() as session:
        assert session.get_one(Order, order_id).refunded_fils == 0
