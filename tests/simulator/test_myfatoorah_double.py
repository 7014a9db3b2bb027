"""The MyFatoorah double over real sockets: the `/v2` API, the payment page, injected faults."""

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from simulator.myfatoorah import (
    FAILURE_CARDS,
    SUCCESS_CARDS,
    TEST_CARDS,
    MyFatoorahConfig,
    MyFatoorahDouble,
)

CALLBACK = "http://localhost:9/shop/callback?order=42"
ERROR_URL = "http://127.0.0.1:9/shop/error"
MASTERCARD, VISA = "5123450000000008", "4508750015741019"


@pytest.fixture(scope="module")
def running() -> Iterator[MyFatoorahDouble]:
    with MyFatoorahDouble(MyFatoorahConfig()) as started:
        yield started


@pytest.fixture
def double(running: MyFatoorahDouble) -> MyFatoorahDouble:
    running.state.reset()
    return running


@pytest.fixture
def api(double: MyFatoorahDouble) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=double.url, headers=double.headers, timeout=10) as client:
        yield client


def execute(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"InvoiceValue": 15, "PaymentMethodId": 1, "CallBackUrl": CALLBACK, **fields}
    response = api.post("/v2/ExecutePayment", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["Data"]
    return data


def status(api: httpx.Client, key: object, key_type: str = "InvoiceId") -> httpx.Response:
    return api.post("/v2/GetPaymentStatus", json={"Key": str(key), "KeyType": key_type})


def status_data(api: httpx.Client, key: object, key_type: str = "InvoiceId") -> dict[str, Any]:
    response = status(api, key, key_type)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["Data"]
    return data


def pay(api: httpx.Client, invoice_id: int, card: str) -> httpx.Response:
    return api.post(f"/pay/{invoice_id}", data={"card_number": card})


def redirect_query(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 303, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)


def assert_invalid(response: httpx.Response, *names: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["IsSuccess"] is False
    assert body["Data"] is None
    assert body["Message"] == "Invalid data"
    reported = {error["Name"] for error in body["ValidationErrors"]}
    assert set(names) <= reported, body["ValidationErrors"]
    assert all(error["Error"] for error in body["ValidationErrors"])


# Authentication and the envelope


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic test-token"}],
)
@pytest.mark.parametrize("endpoint", ["InitiatePayment", "ExecutePayment", "GetPaymentStatus"])
def test_a_bad_token_is_401_with_an_empty_body(
    double: MyFatoorahDouble, headers: dict[str, str], endpoint: str
) -> None:
    response = httpx.post(f"{double.url}/v2/{endpoint}", json={}, headers=headers)
    assert response.status_code == 401
    assert response.content == b""


def test_the_token_is_configurable() -> None:
    with MyFatoorahDouble(MyFatoorahConfig(token="other")) as double:
        body = {"InvoiceAmount": 1, "CurrencyIso": "KWD"}
        ok = httpx.post(f"{double.url}/v2/InitiatePayment", json=body, headers=double.headers)
        refused = httpx.post(
            f"{double.url}/v2/InitiatePayment",
            json=body,
            headers={"Authorization": "Bearer test-token"},
        )
    assert double.headers == {"Authorization": "Bearer other"}
    assert ok.status_code == 200 and ok.json()["IsSuccess"] is True
    assert refused.status_code == 401


def test_initiate_payment_lists_the_methods(api: httpx.Client) -> None:
    response = api.post("/v2/InitiatePayment", json={"InvoiceAmount": 12.5, "CurrencyIso": "KWD"})
    body = response.json()
    assert response.status_code == 200
    assert body["IsSuccess"] is True and body["ValidationErrors"] is None
    methods = {m["PaymentMethodCode"]: m for m in body["Data"]["PaymentMethods"]}
    assert methods["kn"]["PaymentMethodId"] == 1 and methods["kn"]["PaymentMethodEn"] == "KNET"
    assert methods["vm"]["PaymentMethodId"] == 2
    assert methods["ap"]["PaymentMethodId"] == 11
    for method in methods.values():
        assert isinstance(method["PaymentMethodId"], int)
        assert method["PaymentMethodAr"] and method["ImageUrl"].startswith("https://")
        assert method["IsDirectPayment"] is False
        assert method["CurrencyIso"] == method["PaymentCurrencyIso"] == "KWD"
        assert method["TotalAmount"] == 12.5 and method["ServiceCharge"] == 0
        assert isinstance(method["IsEmbeddedSupported"], bool)
    assert '"TotalAmount":12.500' in response.text


def test_initiate_payment_validates(api: httpx.Client) -> None:
    response = api.post("/v2/InitiatePayment", json={"InvoiceAmount": -1, "CurrencyIso": "XXX"})
    assert_invalid(response, "InvoiceAmount", "CurrencyIso")


# ExecutePayment / SendPayment validation

LONG_URL = "https://shop.example/" + "a" * 240


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"InvoiceValue": None}, "InvoiceValue"),
        ({"InvoiceValue": 0}, "InvoiceValue"),
        ({"InvoiceValue": -5}, "InvoiceValue"),
        ({"InvoiceValue": "fifteen"}, "InvoiceValue"),
        ({"InvoiceValue": True}, "InvoiceValue"),
        ({"InvoiceValue": 1.2345}, "InvoiceValue"),
        ({"SessionId": "abc"}, "PaymentMethodId"),  # both
        ({"PaymentMethodId": None}, "PaymentMethodId"),  # neither
        ({"PaymentMethodId": 999}, "PaymentMethodId"),
        ({"CustomerMobile": "٩٦٥٥٥٥٥٥"}, "CustomerMobile"),  # Arabic-Indic digits
        ({"CustomerMobile": "+96512345678"}, "CustomerMobile"),  # 12 characters
        ({"CustomerMobile": "12"}, "CustomerMobile"),
        ({"CustomerMobile": "5555-5555"}, "CustomerMobile"),
        ({"CustomerEmail": "not-an-email"}, "CustomerEmail"),
        ({"CallBackUrl": LONG_URL}, "CallBackUrl"),
        ({"ErrorUrl": "not a url"}, "ErrorUrl"),
        ({"Language": "fr"}, "Language"),
        ({"DisplayCurrencyIso": "USD"}, "DisplayCurrencyIso"),
        ({"ExpiryDate": "tomorrow"}, "ExpiryDate"),
        ({"ExpiryDate": "2020-01-01T00:00:00"}, "ExpiryDate"),
        (
            {"InvoiceItems": [{"ItemName": "credits", "Quantity": 2, "UnitPrice": 5}]},
            "InvoiceItems",
        ),
        ({"InvoiceItems": [{"ItemName": "", "Quantity": 0, "UnitPrice": 15}]}, "InvoiceItems[0]"),
        ({"InvoiceItems": "credits"}, "InvoiceItems"),
    ],
)
def test_execute_payment_validation(api: httpx.Client, changes: dict[str, Any], field: str) -> None:
    body = {"InvoiceValue": 15, "PaymentMethodId": 2, "CallBackUrl": CALLBACK, **changes}
    response = api.post("/v2/ExecutePayment", json=body)
    assert response.status_code == 400, response.text
    names = [error["Name"] for error in response.json()["ValidationErrors"]]
    assert any(name.startswith(field) for name in names), names
    assert_invalid(response)


def test_every_problem_is_listed(api: httpx.Client) -> None:
    body = {"InvoiceValue": 1.2345, "PaymentMethodId": 1, "SessionId": "s", "CustomerMobile": "x"}
    assert_invalid(
        api.post("/v2/ExecutePayment", json=body),
        "InvoiceValue",
        "PaymentMethodId",
        "CustomerMobile",
    )


@pytest.mark.parametrize("raw", [b"{bad json", b"", b"[1, 2]", b'"text"', b"NaN", b"{" * 5000])
def test_malformed_bodies_get_the_envelope(api: httpx.Client, raw: bytes) -> None:
    response = api.post(
        "/v2/ExecutePayment", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_invalid(response, "Request")


JUNK: list[Any] = [
    None,
    {},
    {
        "InvoiceValue": {"a": 1},
        "PaymentMethodId": [1],
        "InvoiceItems": [None, 1, {"Quantity": "x"}],
    },
    b'{"InvoiceValue": 1e400, "PaymentMethodId": 1e30, "InvoiceAmount": -0.0}',
    b'{"InvoiceValue": 1E-999999999, "Amount": 1e999999999, "Key": 1.5, "KeyType": "PaymentId"}',
    {"InvoiceValue": "1" * 5000, "Key": 5, "KeyType": 7, "Amount": []},
    {"Key": None, "KeyType": "InvoiceId", "Amount": -1},
    {"Key": "٣", "KeyType": "InvoiceId"},
    {"Key": "9" * 40, "KeyType": "invoiceid"},
    {"InvoiceAmount": "nan", "CurrencyIso": None, "NotificationOption": 3},
    {"ExpiryDate": 5, "Language": ["en"], "CustomerName": {"x": 1}},
]


@pytest.mark.parametrize("body", JUNK)
@pytest.mark.parametrize(
    "endpoint",
    [
        "InitiatePayment",
        "ExecutePayment",
        "SendPayment",
        "GetPaymentStatus",
        "MakeRefund",
        "GetRefundStatus",
    ],
)
def test_junk_never_gets_a_500(api: httpx.Client, endpoint: str, body: Any) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = api.post(f"/v2/{endpoint}", content=raw)
    assert response.status_code == 400, response.text
    assert response.json()["IsSuccess"] is False


# Creating invoices


def test_execute_payment(api: httpx.Client, double: MyFatoorahDouble) -> None:
    first = execute(api, CustomerReference="order-1", UserDefinedField="acct-7")
    second = execute(api, PaymentMethodId=None, SessionId="session-1")
    assert isinstance(first["InvoiceId"], int) and second["InvoiceId"] > first["InvoiceId"]
    assert first["PaymentURL"] == f"{double.url}/pay/{first['InvoiceId']}"
    assert first["IsDirectPayment"] is False and first["RecurringId"] == ""
    assert first["CustomerReference"] == "order-1" and first["UserDefinedField"] == "acct-7"


def test_money_stays_exact(api: httpx.Client) -> None:
    raw = (
        b'{"InvoiceValue": 2.500, "PaymentMethodId": 1, "InvoiceItems": ['
        b'{"ItemName": "a", "Quantity": 3, "UnitPrice": 0.1},'
        b'{"ItemName": "b", "Quantity": 1, "UnitPrice": 2.2}]}'
    )
    response = api.post(
        "/v2/ExecutePayment", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text  # 3 x 0.1 + 2.2 == 2.5 exactly
    text = status(api, response.json()["Data"]["InvoiceId"]).text
    assert '"InvoiceValue":2.500' in text and '"UnitPrice":0.100' in text
    assert '"InvoiceDisplayValue":"2.500 KD"' in text


def test_field_names_are_matched_ignoring_case(api: httpx.Client) -> None:
    body = {"invoiceValue": 3, "paymentmethodid": 2, "CUSTOMERREFERENCE": "lower"}
    response = api.post("/v2/ExecutePayment", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["Data"]["CustomerReference"] == "lower"


def test_public_url_makes_the_payment_url() -> None:
    config = MyFatoorahConfig(public_url="https://pay.example.test/")
    with MyFatoorahDouble(config) as double:
        body = {"InvoiceValue": 1, "PaymentMethodId": 1}
        response = httpx.post(f"{double.url}/v2/ExecutePayment", json=body, headers=double.headers)
    data = response.json()["Data"]
    assert data["PaymentURL"] == f"https://pay.example.test/pay/{data['InvoiceId']}"


def test_send_payment(api: httpx.Client, double: MyFatoorahDouble) -> None:
    body = {
        "InvoiceValue": 7,
        "CustomerName": "Fatima",
        "NotificationOption": "LNK",
        "CustomerReference": "order-9",
    }
    response = api.post("/v2/SendPayment", json=body)
    assert response.status_code == 200, response.text
    data = response.json()["Data"]
    assert response.json()["IsSuccess"] is True
    assert data["InvoiceURL"] == f"{double.url}/pay/{data['InvoiceId']}"
    assert data["CustomerReference"] == "order-9" and data["UserDefinedField"] is None
    assert status_data(api, data["InvoiceId"])["CustomerName"] == "Fatima"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"CustomerName": None}, "CustomerName"),
        ({"NotificationOption": None}, "NotificationOption"),
        ({"NotificationOption": "FAX"}, "NotificationOption"),
        ({"NotificationOption": "EML"}, "CustomerEmail"),
        ({"NotificationOption": "SMS"}, "CustomerMobile"),
        ({"InvoiceValue": 1.0001}, "InvoiceValue"),
    ],
)
def test_send_payment_validation(api: httpx.Client, changes: dict[str, Any], field: str) -> None:
    body = {"InvoiceValue": 7, "CustomerName": "Ali", "NotificationOption": "LNK", **changes}
    assert_invalid(api.post("/v2/SendPayment", json=body), field)


# The payment page


def test_the_payment_page(api: httpx.Client) -> None:
    invoice_id = execute(api, InvoiceValue=12345, CustomerReference="order-<7>")["InvoiceId"]
    response = api.get(f"/pay/{invoice_id}")
    assert response.status_code == 200
    html = response.text
    assert "12,345.000 KD" in html and "order-&lt;7&gt;" in html
    assert '<input name="card_number" id="card_number"' in html
    assert '<button type="submit" id="pay">Pay</button>' in html
    assert re.search(r'<form method="post">', html)
    assert all(number in html for number in TEST_CARDS)


def test_unknown_invoice_pages_are_404(api: httpx.Client) -> None:
    assert api.get("/pay/999").status_code == 404
    assert api.get("/pay/abc").status_code == 404
    assert pay(api, 999, MASTERCARD).status_code == 404


@pytest.mark.parametrize("card", SUCCESS_CARDS)
def test_a_success_card_pays(api: httpx.Client, card: str) -> None:
    invoice_id = execute(api, ErrorUrl=ERROR_URL, CustomerReference="r1")["InvoiceId"]
    response = pay(api, invoice_id, card)
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "&paymentId=")
    query = redirect_query(response)
    assert query["paymentId"] == query["Id"] and query["order"] == ["42"]
    payment_id = query["paymentId"][0]
    assert re.fullmatch(r"[0-9]{20}", payment_id)

    data = status_data(api, payment_id, "PaymentId")
    assert data["InvoiceId"] == invoice_id and data["InvoiceStatus"] == "Paid"
    [transaction] = data["InvoiceTransactions"]
    assert transaction["PaymentId"] == payment_id
    assert transaction["TransactionStatus"] == "Succss"
    assert transaction["TransationValue"] == "15.000" and transaction["PaidCurrency"] == "KD"
    assert transaction["ErrorCode"] == "" and transaction["PaymentGateway"] == "KNET"
    assert transaction["CardNumber"] == card[:6] + "xxxxxx" + card[-4:]


@pytest.mark.parametrize(("code", "card"), sorted(FAILURE_CARDS.items()))
def test_a_failure_card_fails_with_its_error_code(api: httpx.Client, code: str, card: str) -> None:
    invoice_id = execute(api, ErrorUrl=ERROR_URL)["InvoiceId"]
    response = pay(api, invoice_id, card)
    assert response.headers["location"].startswith(ERROR_URL + "?paymentId=")
    payment_id = redirect_query(response)["paymentId"][0]
    data = status_data(api, payment_id, "PaymentId")
    assert data["InvoiceStatus"] == "Pending"
    [transaction] = data["InvoiceTransactions"]
    assert transaction["TransactionStatus"] == "Failed"
    assert transaction["ErrorCode"] == code and transaction["Error"]


def test_failure_cards_cover_every_error_code() -> None:
    assert sorted(FAILURE_CARDS) == [f"MF{n:03d}" for n in (*range(1, 11), 20)]
    assert len(SUCCESS_CARDS) == 2


def test_an_unknown_card_is_declined_and_falls_back_to_the_callback(api: httpx.Client) -> None:
    invoice_id = execute(api)["InvoiceId"]  # no ErrorUrl
    response = pay(api, invoice_id, "4111 1111 1111 1111")
    assert response.headers["location"].startswith(CALLBACK + "&paymentId=")
    [transaction] = status_data(api, invoice_id)["InvoiceTransactions"]
    assert transaction["ErrorCode"] == "MF002"


def test_a_failure_then_a_success_pays_the_invoice(api: httpx.Client) -> None:
    invoice_id = execute(api, ErrorUrl=ERROR_URL)["InvoiceId"]
    failed = redirect_query(pay(api, invoice_id, FAILURE_CARDS["MF004"]))["paymentId"][0]
    paid = redirect_query(pay(api, invoice_id, VISA))["paymentId"][0]
    assert failed != paid
    for key, key_type in ((invoice_id, "InvoiceId"), (failed, "PaymentId"), (paid, "PaymentId")):
        data = status_data(api, key, key_type)
        assert data["InvoiceStatus"] == "Paid"
        statuses = [(t["PaymentId"], t["TransactionStatus"]) for t in data["InvoiceTransactions"]]
        assert statuses == [(failed, "Failed"), (paid, "Succss")]

    page = api.get(f"/pay/{invoice_id}")
    assert "already paid" in page.text and f"paymentId={paid}" in page.text
    again = pay(api, invoice_id, VISA)
    assert again.status_code == 409 and "already paid" in again.text
    assert len(status_data(api, invoice_id)["InvoiceTransactions"]) == 2


def test_an_empty_card_number_makes_no_transaction(api: httpx.Client) -> None:
    invoice_id = execute(api)["InvoiceId"]
    assert pay(api, invoice_id, " ").status_code == 400
    assert status_data(api, invoice_id)["InvoiceTransactions"] == []


def test_without_a_callback_url_the_double_shows_its_result_page(
    api: httpx.Client, double: MyFatoorahDouble
) -> None:
    invoice_id = execute(api, CallBackUrl=None)["InvoiceId"]
    response = pay(api, invoice_id, MASTERCARD)
    assert response.headers["location"].startswith(f"{double.url}/pay/{invoice_id}/result?")
    result = api.get(response.headers["location"])
    assert result.status_code == 200 and "Payment succeeded" in result.text


def test_an_expired_invoice_refuses_payment(api: httpx.Client, double: MyFatoorahDouble) -> None:
    invoice_id = execute(api)["InvoiceId"]
    assert api.post(f"/_control/invoices/{invoice_id}/expire").status_code == 200
    assert 'id="expired"' in api.get(f"/pay/{invoice_id}").text
    assert pay(api, invoice_id, MASTERCARD).status_code == 410
    refused = api.post(f"/_control/invoices/{invoice_id}/pay", json={"card_number": MASTERCARD})
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "expired"
    assert status_data(api, invoice_id)["InvoiceTransactions"] == []


def test_the_control_shortcut_pays_like_the_form(api: httpx.Client) -> None:
    invoice_id = execute(api, ErrorUrl=ERROR_URL)["InvoiceId"]
    declined = api.post(
        f"/_control/invoices/{invoice_id}/pay", json={"card_number": FAILURE_CARDS["MF009"]}
    ).json()
    assert declined["redirect_url"] == f"{ERROR_URL}?paymentId={declined['payment_id']}" + (
        f"&Id={declined['payment_id']}"
    )
    paid = api.post(f"/_control/invoices/{invoice_id}/pay", json={"card_number": MASTERCARD})
    body = paid.json()
    assert body["succeeded"] is True and body["transaction_status"] == "Succss"
    assert body["redirect_url"].startswith(CALLBACK + "&paymentId=" + body["payment_id"])
    assert status_data(api, body["payment_id"], "PaymentId")["InvoiceStatus"] == "Paid"


def test_the_python_shortcut_pays_like_the_form(
    api: httpx.Client, double: MyFatoorahDouble
) -> None:
    invoice_id = execute(api)["InvoiceId"]
    outcome = double.state.pay(invoice_id, MASTERCARD)
    assert outcome.succeeded and outcome.invoice_id == invoice_id
    assert status_data(api, outcome.payment_id, "PaymentId")["InvoiceStatus"] == "Paid"
    [invoice] = double.state.invoices()
    assert invoice.paid and invoice.transactions[0].payment_id == outcome.payment_id


# GetPaymentStatus


def test_payment_status_fields(api: httpx.Client) -> None:
    invoice_id = execute(
        api,
        InvoiceValue=12345,
        CustomerName="Ahmad",
        CustomerMobile="55555555",
        CustomerEmail="a@example.com",
        CustomerReference="order-5",
        UserDefinedField="acct-5",
        InvoiceItems=[{"ItemName": "Credits", "Quantity": 1, "UnitPrice": 12345}],
    )["InvoiceId"]
    pay(api, invoice_id, MASTERCARD)
    response = status(api, invoice_id, "invoiceid")
    body = response.json()
    assert body["IsSuccess"] is True and body["ValidationErrors"] is None
    data = body["Data"]
    assert data["InvoiceId"] == invoice_id and data["InvoiceStatus"] == "Paid"
    assert re.fullmatch(r"20[0-9]{8}", data["InvoiceReference"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", data["CreatedDate"])
    assert re.fullmatch(r"[A-Z][a-z]+ \d{1,2}, \d{4}", data["ExpiryDate"])
    assert re.fullmatch(r"\d\d:\d\d:\d\d", data["ExpiryTime"])
    assert '"InvoiceValue":12345.000' in response.text
    assert data["InvoiceDisplayValue"] == "12,345.000 KD"
    assert (data["CustomerName"], data["CustomerMobile"], data["CustomerEmail"]) == (
        "Ahmad",
        "55555555",
        "a@example.com",
    )
    assert data["UserDefinedField"] == "acct-5" and data["CustomerReference"] == "order-5"
    assert data["InvoiceItems"] == [{"ItemName": "Credits", "Quantity": 1, "UnitPrice": 12345}]
    assert data["Suppliers"] == [] and "DueDeposit" in data and "DepositStatus" in data
    [transaction] = data["InvoiceTransactions"]
    assert transaction["TransationValue"] == "12,345.000"
    for field in (
        "TransactionDate",
        "ReferenceId",
        "TrackId",
        "TransactionId",
        "AuthorizationId",
        "CustomerServiceCharge",
        "DueValue",
        "PaidCurrencyValue",
        "Currency",
        "Error",
    ):
        assert field in transaction


def test_customer_reference_finds_the_newest_invoice(api: httpx.Client) -> None:
    older = execute(api, CustomerReference="same")["InvoiceId"]
    newer = execute(api, CustomerReference="same")["InvoiceId"]
    execute(api, CustomerReference="other")
    assert newer > older
    assert status_data(api, "same", "CustomerReference")["InvoiceId"] == newer
    assert status_data(api, older)["InvoiceId"] == older


@pytest.mark.parametrize(
    ("key", "key_type"),
    [("999", "InvoiceId"), ("12345678901234567890", "PaymentId"), ("nobody", "CustomerReference")],
)
def test_an_unknown_key_is_refused(api: httpx.Client, key: str, key_type: str) -> None:
    execute(api, CustomerReference="somebody")
    response = status(api, key, key_type)
    body = response.json()
    assert response.status_code == 400
    assert body["IsSuccess"] is False and body["Message"] and body["Data"] is None


def test_an_unknown_key_type_is_a_validation_error(api: httpx.Client) -> None:
    assert_invalid(status(api, "1", "OrderId"), "KeyType")


# Refunds


def refund(api: httpx.Client, key: object, amount: Any, key_type: str = "InvoiceId") -> Any:
    body = {
        "KeyType": key_type,
        "Key": str(key),
        "Amount": amount,
        "ServiceChargeOnCustomer": False,
        "Comment": "sorry",
        "ExternalIdentifier": "refund-1",
    }
    return api.post("/v2/MakeRefund", json=body)


def test_refunds(api: httpx.Client) -> None:
    invoice_id = execute(api, InvoiceValue=10)["InvoiceId"]
    unpaid = refund(api, invoice_id, 1)
    assert unpaid.status_code == 400 and unpaid.json()["IsSuccess"] is False

    payment_id = redirect_query(pay(api, invoice_id, MASTERCARD))["paymentId"][0]
    first = refund(api, payment_id, 4, "PaymentId")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["IsSuccess"] is True and body["Message"] == "Refund Created Successfully!"
    data = body["Data"]
    assert isinstance(data["RefundId"], int) and isinstance(data["RefundInvoiceId"], int)
    assert data["RefundReference"] and data["Amount"] == 4
    assert (data["Comment"], data["ExternalIdentifier"]) == ("sorry", "refund-1")

    too_much = refund(api, invoice_id, 6.001)
    assert too_much.status_code == 400 and too_much.json()["IsSuccess"] is False
    assert refund(api, invoice_id, 6).status_code == 200  # exactly what is left
    assert refund(api, invoice_id, 0.001).status_code == 400
    assert_invalid(refund(api, invoice_id, 0), "Amount")

    listed = api.post("/v2/GetRefundStatus", json={"KeyType": "InvoiceId", "Key": str(invoice_id)})
    results = listed.json()["Data"]["RefundStatusResult"]
    assert [(r["RefundStatus"], r["RefundAmount"]) for r in results] == [
        ("Pending", 4),
        ("Pending", 6),
    ]
    api.post(f"/_control/refunds/{data['RefundId']}/status", json={"status": "Refunded"})
    by_id = api.post("/v2/GetRefundStatus", json={"KeyType": "RefundId", "Key": data["RefundId"]})
    [only] = by_id.json()["Data"]["RefundStatusResult"]
    assert only["RefundStatus"] == "Refunded" and only["RefundReference"] == data["RefundReference"]


def test_a_failed_payment_id_cannot_be_refunded(api: httpx.Client) -> None:
    invoice_id = execute(api, ErrorUrl=ERROR_URL)["InvoiceId"]
    failed = redirect_query(pay(api, invoice_id, FAILURE_CARDS["MF002"]))["paymentId"][0]
    pay(api, invoice_id, VISA)
    assert refund(api, failed, 1, "PaymentId").status_code == 400
    unknown = api.post("/v2/GetRefundStatus", json={"KeyType": "RefundId", "Key": "1"})
    assert unknown.status_code == 400 and unknown.json()["IsSuccess"] is False


# Injected faults


def initiate(api: httpx.Client) -> httpx.Response:
    return api.post("/v2/InitiatePayment", json={"InvoiceAmount": 1, "CurrencyIso": "KWD"})


def test_fault_down_closes_the_connection(api: httpx.Client, double: MyFatoorahDouble) -> None:
    double.state.inject_fault("down", 2)
    for _ in range(2):
        with pytest.raises(httpx.TransportError):
            initiate(api)
    assert initiate(api).json()["IsSuccess"] is True


def test_fault_500_answers_an_html_page(api: httpx.Client) -> None:
    api.post("/_control/faults", json={"mode": "500", "count": 1})
    response = initiate(api)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().startswith("<!DOCTYPE html>")
    assert initiate(api).status_code == 200


def test_fault_empty_answers_200_without_a_body(api: httpx.Client) -> None:
    pending = api.post("/_control/faults", json={"mode": "empty", "count": 3}).json()["pending"]
    assert pending == ["empty"] * 3
    for _ in range(3):
        response = initiate(api)
        assert response.status_code == 200 and response.content == b""
    assert initiate(api).json()["IsSuccess"] is True


def test_faults_spare_the_payment_page_and_the_controls(api: httpx.Client) -> None:
    invoice_id = execute(api)["InvoiceId"]
    api.post("/_control/faults", json={"mode": "down", "count": 1})
    assert api.get(f"/pay/{invoice_id}").status_code == 200
    assert api.get("/_control/faults").json()["pending"] == ["down"]
    with pytest.raises(httpx.TransportError):
        status(api, invoice_id)


def test_bad_fault_requests_are_refused(api: httpx.Client) -> None:
    assert api.post("/_control/faults", json={"mode": "503", "count": 1}).status_code == 400
    assert api.post("/_control/faults", json={"mode": "down", "count": "x"}).status_code == 400
    assert api.post("/_control/faults", content=b"nope").status_code == 400
