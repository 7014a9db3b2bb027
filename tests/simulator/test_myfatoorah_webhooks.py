"""The double's webhooks, received by a real HTTP endpoint and verified with `schema.myfatoorah`."""

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from schema.myfatoorah import SIGNATURE_HEADER, load_body, signature_matches
from simulator.myfatoorah import (
    FAILURE_CARDS,
    MyFatoorahConfig,
    MyFatoorahDouble,
    ReceivedWebhook,
    WebhookReceiver,
)

SECRET = "test-webhook-secret"
MASTERCARD = "5123450000000008"
FAST = {"webhook_retry_delay_s": 0.01}


@pytest.fixture(scope="module")
def running_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def running_double() -> Iterator[MyFatoorahDouble]:
    with MyFatoorahDouble(MyFatoorahConfig()) as running:
        yield running


@pytest.fixture
def receiver(running_receiver: WebhookReceiver) -> WebhookReceiver:
    running_receiver.reset()
    return running_receiver


@pytest.fixture
def double(running_double: MyFatoorahDouble) -> Iterator[MyFatoorahDouble]:
    running_double.state.reset()
    yield running_double
    running_double.state.reset()  # no delivery of this test reaches the next one


def configure(double: MyFatoorahDouble, receiver: WebhookReceiver, **config: Any) -> None:
    """The shared double, as if started with this config."""
    double.state.configure(webhook_url=receiver.url, **{**FAST, **config})


def new_invoice(double: MyFatoorahDouble, **fields: Any) -> int:
    body = {
        "InvoiceValue": 15,
        "PaymentMethodId": 2,
        "CallBackUrl": "http://127.0.0.1:9/callback",
        "CustomerReference": "order-1",
        "CustomerName": "Sara",
        **fields,
    }
    response = httpx.post(f"{double.url}/v2/ExecutePayment", json=body, headers=double.headers)
    assert response.status_code == 200, response.text
    invoice_id: int = response.json()["Data"]["InvoiceId"]
    return invoice_id


def pay_by_form(double: MyFatoorahDouble, invoice_id: int, card: str) -> str:
    # A short timeout: the redirect must never wait for the webhook's delivery.
    url = f"{double.url}/pay/{invoice_id}"
    response = httpx.post(url, data={"card_number": card}, timeout=3)
    assert response.status_code == 303
    return parse_qs(urlsplit(response.headers["location"]).query)["paymentId"][0]


def verified(hook: ReceivedWebhook, secret: str = SECRET) -> bool:
    return signature_matches(load_body(hook.raw), secret, hook.signature)


def test_v2_webhook_for_a_success(double: MyFatoorahDouble, receiver: WebhookReceiver) -> None:
    configure(double, receiver)
    invoice_id = new_invoice(double, ExternalIdentifier="ext-1", UserDefinedField="acct-1")
    payment_id = pay_by_form(double, invoice_id, MASTERCARD)
    [hook] = receiver.wait_for(1)
    assert hook.headers["content-type"] == "application/json"
    assert hook.signature == hook.headers[SIGNATURE_HEADER.lower()]
    assert verified(hook)
    assert not verified(hook, "another-secret")
    body = hook.body()
    event, data = body["Event"], body["Data"]
    assert event["Code"] == 1 and event["Name"] == "PAYMENT_STATUS_CHANGED"
    assert event["CountryIsoCode"] == "KWT" and re.fullmatch(r"WH-\d+", event["Reference"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", event["CreationDate"])
    assert data["Invoice"]["Id"] == str(invoice_id) and data["Invoice"]["Status"] == "PAID"
    assert data["Invoice"]["ExternalIdentifier"] == "ext-1"
    assert data["Invoice"]["UserDefinedField"] == "acct-1"
    transaction = data["Transaction"]
    assert transaction["Status"] == "SUCCESS" and transaction["PaymentId"] == payment_id
    assert transaction["PaymentMethod"] == "VISA/MASTER"
    assert transaction["Error"] == {"Code": "", "Message": ""}
    assert data["Customer"]["Name"] == "Sara"
    assert data["Amount"]["BaseCurrency"] == "KWD" and data["Amount"]["ValueInBaseCurrency"] == "15"


def test_v2_webhook_for_a_failure(double: MyFatoorahDouble, receiver: WebhookReceiver) -> None:
    configure(double, receiver)
    invoice_id = new_invoice(double)
    pay_by_form(double, invoice_id, FAILURE_CARDS["MF010"])
    [hook] = receiver.wait_for(1)
    data = hook.body()["Data"]
    assert verified(hook)
    assert data["Invoice"]["Status"] == "PENDING" and data["Transaction"]["Status"] == "FAILED"
    assert (
        data["Transaction"]["Error"]["Code"] == "MF010" and data["Transaction"]["Error"]["Message"]
    )


def test_v1_webhooks(double: MyFatoorahDouble, receiver: WebhookReceiver) -> None:
    configure(double, receiver, webhook_version=1, webhook_secret="v1-secret")
    invoice_id = new_invoice(double, InvoiceValue=2.5, CustomerMobile="55555555")
    failed = pay_by_form(double, invoice_id, FAILURE_CARDS["MF002"])
    receiver.wait_for(1)  # keep the arrival order the order of the payments
    paid = pay_by_form(double, invoice_id, MASTERCARD)
    first, second = receiver.wait_for(2)
    for hook in (first, second):
        assert verified(hook, "v1-secret") and not verified(hook)
        body = hook.body()
        assert body["EventType"] == 1 and body["Event"] == "TransactionsStatusChanged"
        assert body["CountryIsoCode"] == "KWT" and re.fullmatch(r"\d{14}", body["DateTime"])
        data = body["Data"]
        assert data["InvoiceId"] == invoice_id and isinstance(data["InvoiceId"], int)
        assert data["InvoiceValueInBaseCurrency"] == "2.5" and data["BaseCurrency"] == "KWD"
        assert data["InvoiceValueInDisplayCurreny"] == "2.5"
        assert data["CustomerReference"] == "order-1" and data["CustomerMobile"] == "55555555"
        assert data["CustomerEmail"] is None and re.fullmatch(r"\d{14}", data["CreatedDate"])
    assert (first.body()["Data"]["PaymentId"], first.body()["Data"]["TransactionStatus"]) == (
        failed,
        "FAILED",
    )
    assert (second.body()["Data"]["PaymentId"], second.body()["Data"]["TransactionStatus"]) == (
        paid,
        "SUCCESS",
    )


def test_a_tampered_webhook_does_not_verify(
    double: MyFatoorahDouble, receiver: WebhookReceiver
) -> None:
    configure(double, receiver)
    pay_by_form(double, new_invoice(double), FAILURE_CARDS["MF001"])
    [hook] = receiver.wait_for(1)
    tampered = load_body(hook.raw)
    tampered["Data"]["Transaction"]["Status"] = "SUCCESS"
    assert not signature_matches(tampered, SECRET, hook.signature)


def test_duplicates_share_the_event_reference(
    double: MyFatoorahDouble, receiver: WebhookReceiver
) -> None:
    configure(double, receiver, duplicate_webhooks=3)
    pay_by_form(double, new_invoice(double), MASTERCARD)
    hooks = receiver.wait_for(3)
    assert double.state.wait_for_webhooks()
    assert len(hooks) == 3 and all(verified(hook) for hook in hooks)
    assert len({hook.raw for hook in hooks}) == 1
    assert len({hook.body()["Event"]["Reference"] for hook in hooks}) == 1


def test_each_event_has_its_own_reference(
    double: MyFatoorahDouble, receiver: WebhookReceiver
) -> None:
    configure(double, receiver)
    invoice_id = new_invoice(double)
    pay_by_form(double, invoice_id, FAILURE_CARDS["MF005"])
    receiver.wait_for(1)
    pay_by_form(double, invoice_id, MASTERCARD)
    hooks = receiver.wait_for(2)
    assert len({hook.body()["Event"]["Reference"] for hook in hooks}) == 2


def test_held_webhooks_are_released_in_reverse(
    double: MyFatoorahDouble, receiver: WebhookReceiver
) -> None:
    configure(double, receiver, hold_webhooks=True)
    invoice_id = new_invoice(double)
    failed = pay_by_form(double, invoice_id, FAILURE_CARDS["MF006"])
    paid = pay_by_form(double, invoice_id, MASTERCARD)
    assert receiver.received == [] and len(double.state.webhooks.held) == 2
    delivered = double.state.release_webhooks(order="reverse")
    assert double.state.webhooks.held == []
    assert [d.status_code for d in delivered] == [200, 200]
    order = [hook.body()["Data"]["Transaction"]["PaymentId"] for hook in receiver.received]
    assert order == [paid, failed]


def test_held_webhooks_released_over_http(
    double: MyFatoorahDouble, receiver: WebhookReceiver
) -> None:
    configure(double, receiver, hold_webhooks=True, duplicate_webhooks=2)
    invoice_id = new_invoice(double)
    pay_by_form(double, invoice_id, FAILURE_CARDS["MF003"])
    pay_by_form(double, invoice_id, MASTERCARD)
    listed = httpx.get(f"{double.url}/_control/webhooks").json()
    assert listed == {"deliveries": [], "held": 4}
    released = httpx.post(f"{double.url}/_control/webhooks/release", json={"order": "sent"})
    assert len(released.json()["deliveries"]) == 4
    statuses = [hook.body()["Data"]["Transaction"]["Status"] for hook in receiver.received]
    assert statuses == ["FAILED", "FAILED", "SUCCESS", "SUCCESS"]


def test_retries_until_the_merchant_answers_2xx(
    double: MyFatoorahDouble, receiver: WebhookReceiver
) -> None:
    receiver.fail_next(500, 503)
    configure(double, receiver)
    pay_by_form(double, new_invoice(double), MASTERCARD)
    receiver.wait_for(3)
    assert double.state.wait_for_webhooks()
    log = httpx.get(f"{double.url}/_control/webhooks").json()["deliveries"]
    assert [(d["attempt"], d["status_code"], d["ok"]) for d in log] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert len({d["body"] for d in log}) == 1 and len({d["signature"] for d in log}) == 1
    assert log[0]["body"].encode() == receiver.received[0].raw
    assert log[0]["signature"] == receiver.received[0].signature


@pytest.mark.parametrize(("version", "attempts"), [(1, 4), (2, 6)])
def test_retries_give_up_like_the_real_one(
    double: MyFatoorahDouble, receiver: WebhookReceiver, version: int, attempts: int
) -> None:
    receiver.fail_next(*[500] * 10)
    configure(double, receiver, webhook_version=version)
    pay_by_form(double, new_invoice(double), MASTERCARD)
    assert double.state.wait_for_webhooks()
    deliveries = double.state.deliveries
    assert [d.attempt for d in deliveries] == list(range(1, attempts + 1))
    assert len(receiver.received) == attempts and not any(d.ok for d in deliveries)


def test_an_unreachable_merchant_is_logged(double: MyFatoorahDouble) -> None:
    with WebhookReceiver() as gone:
        url = gone.url
    double.state.configure(webhook_url=url, webhook_attempts=2, **FAST)
    pay_by_form(double, new_invoice(double), MASTERCARD)
    assert double.state.wait_for_webhooks()
    deliveries = double.state.deliveries
    assert [(d.attempt, d.status_code) for d in deliveries] == [(1, None), (2, None)]
    assert all(d.error for d in deliveries)


def test_the_redirect_does_not_wait_for_the_webhook(
    double: MyFatoorahDouble, receiver: WebhookReceiver
) -> None:
    release = receiver.hold()  # the merchant answers only once released (or after 10 s)
    configure(double, receiver)
    payment_id = pay_by_form(double, new_invoice(double), MASTERCARD)  # times out in 3 s
    [hook] = receiver.wait_for(1)
    assert not release.is_set() and double.state.deliveries == []  # still in flight
    release.set()
    assert double.state.wait_for_webhooks()
    assert hook.body()["Data"]["Transaction"]["PaymentId"] == payment_id


def test_forged_webhooks_do_not_verify(double: MyFatoorahDouble, receiver: WebhookReceiver) -> None:
    configure(double, receiver, hold_webhooks=True)
    invoice_id = new_invoice(double)
    pay_by_form(double, invoice_id, MASTERCARD)
    [forged] = double.state.deliver_forged(invoice_id)
    over_http = httpx.post(f"{double.url}/_control/webhooks/forged", json={})
    double.state.release_webhooks()
    assert forged.forged and over_http.json()["deliveries"][0]["forged"] is True
    first, second, genuine = receiver.received
    assert not verified(first) and not verified(second) and verified(genuine)
    assert first.body()["Data"]["Invoice"]["Status"] == "PAID"


def test_no_webhook_url_means_no_webhooks(double: MyFatoorahDouble) -> None:
    pay_by_form(double, new_invoice(double), MASTERCARD)
    assert double.state.wait_for_webhooks()
    assert double.state.deliveries == [] and double.state.webhooks.held == []


def test_config_changes_at_runtime(double: MyFatoorahDouble, receiver: WebhookReceiver) -> None:
    changed = httpx.post(
        f"{double.url}/_control/config",
        json={"webhook_url": receiver.url, "webhook_version": 1},
    )
    assert changed.status_code == 200 and changed.json()["webhook_version"] == 1
    bad = httpx.post(f"{double.url}/_control/config", json={"duplicate_webhooks": 0})
    assert bad.status_code == 400
    pay_by_form(double, new_invoice(double), MASTERCARD)
    [hook] = receiver.wait_for(1)
    assert hook.body()["EventType"] == 1 and verified(hook)
