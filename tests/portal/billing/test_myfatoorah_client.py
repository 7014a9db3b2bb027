"""Our MyFatoorah client against the MyFatoorah double (a real HTTP server)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from portal.billing.myfatoorah import (
    GatewayAuthFailed,
    GatewayRejected,
    GatewayUnreachable,
    MyFatoorahClient,
)
from simulator.myfatoorah.cards import FAILURE_CARDS, SUCCESS_CARDS
from simulator.myfatoorah.harness import MyFatoorahDouble

INVOICE = {
    "CustomerName": "Rasha Saeed",
    "CustomerEmail": "rasha@example.com",
    "CustomerReference": "4242",
    "CallBackUrl": "http://127.0.0.1:9/billing/callback?order=4242",
    "ErrorUrl": "http://127.0.0.1:9/billing/callback?order=4242",
    "MobileCountryCode": "+965",
    "CustomerMobile": "50000000",
}


def invoice(fils: int) -> dict[str, object]:
    """The invoice fields for one item at this price (items must add up to the value)."""
    price = Decimal(fils) / 1000
    return {**INVOICE, "InvoiceItems": [{"ItemName": "Credits", "Quantity": 1, "UnitPrice": price}]}


@pytest.fixture(scope="module")
def double() -> Iterator[MyFatoorahDouble]:
    with MyFatoorahDouble() as running:
        yield running


@pytest.fixture
def client(double: MyFatoorahDouble) -> Iterator[MyFatoorahClient]:
    double.state.reset()
    made = MyFatoorahClient(base_url=double.url, token=double.state.config.token, timeout_s=5)
    yield made
    made.close()


def invoice_number(url: str) -> int:
    return int(url.rstrip("/").rsplit("/", 1)[-1])


def test_an_invoice_is_made_paid_and_looked_up_by_every_key(
    client: MyFatoorahClient, double: MyFatoorahDouble
) -> None:
    created = client.send_payment(invoice=invoice(13_500), amount_fils=13_500)
    assert created.invoice_id.isdigit()
    assert created.payment_url.startswith(double.url)

    pending = client.get_payment_status(key=created.invoice_id, key_type="InvoiceId")
    assert (pending.invoice_status, pending.paid) == ("Pending", False)
    assert pending.invoice_value == Decimal("13.500")

    outcome = double.state.pay(invoice_number(created.payment_url), SUCCESS_CARDS[0])
    by_payment = client.get_payment_status(key=outcome.payment_id, key_type="PaymentId")
    by_reference = client.get_payment_status(key="4242", key_type="CustomerReference")
    for status in (by_payment, by_reference):
        assert status.invoice_id == created.invoice_id
        assert status.paid
        assert status.customer_reference == "4242"
        assert status.successful_transaction is not None
        assert status.successful_transaction.payment_id == outcome.payment_id
        assert status.display_value.endswith("KD")


def test_a_failed_attempt_reports_its_error_code(
    client: MyFatoorahClient, double: MyFatoorahDouble
) -> None:
    created = client.send_payment(invoice=invoice(5_000), amount_fils=5_000)
    double.state.pay(invoice_number(created.payment_url), FAILURE_CARDS["MF004"])
    status = client.get_payment_status(key=created.invoice_id, key_type="InvoiceId")
    assert not status.paid
    assert status.last_transaction is not None
    assert (status.last_transaction.status, status.last_transaction.error_code) == (
        "Failed",
        "MF004",
    )


def test_initiate_then_execute_uses_a_looked_up_method(client: MyFatoorahClient) -> None:
    methods = client.initiate_payment(amount_fils=2_500)
    knet = next(m for m in methods if m["PaymentMethodCode"] == "kn")
    created = client.execute_payment(
        payment_method_id=int(knet["PaymentMethodId"]), invoice=invoice(2_500), amount_fils=2_500
    )
    assert created.payment_url


def test_refunds_are_requested_and_over_refunds_refused(
    client: MyFatoorahClient, double: MyFatoorahDouble
) -> None:
    created = client.send_payment(invoice=invoice(13_500), amount_fils=13_500)
    double.state.pay(invoice_number(created.payment_url), SUCCESS_CARDS[1])

    refund = client.make_refund(
        invoice_id=created.invoice_id, amount_fils=3_500, comment="partial", external_id="r-1"
    )
    assert refund.amount == Decimal("3.500")
    assert refund.refund_id
    with pytest.raises(GatewayRejected):
        client.make_refund(
            invoice_id=created.invoice_id, amount_fils=10_001, comment="too much", external_id="r-2"
        )


def test_validation_errors_are_named(client: MyFatoorahClient) -> None:
    with pytest.raises(GatewayRejected) as caught:
        client.send_payment(invoice={**invoice(1_000), "CustomerMobile": "abc"}, amount_fils=1_000)
    assert any(name == "CustomerMobile" for name, _error in caught.value.errors)


def test_a_bad_token_and_an_unreachable_gateway_are_told_apart(
    double: MyFatoorahDouble, client: MyFatoorahClient
) -> None:
    wrong = MyFatoorahClient(base_url=double.url, token="not-the-token", timeout_s=5)
    with pytest.raises(GatewayAuthFailed):
        wrong.get_payment_status(key="1", key_type="InvoiceId")
    wrong.close()

    for mode in ("down", "500"):
        double.state.inject_fault(mode)  # type: ignore[arg-type]
        with pytest.raises(GatewayUnreachable):
            client.get_payment_status(key="1", key_type="InvoiceId")
    nowhere = MyFatoorahClient(base_url="http://127.0.0.1:9", token="x", timeout_s=2)
    with pytest.raises(GatewayUnreachable):
        nowhere.get_payment_status(key="1", key_type="InvoiceId")
    nowhere.close()
