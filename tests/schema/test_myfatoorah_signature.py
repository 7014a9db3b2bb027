"""`schema.myfatoorah` against MyFatoorah's official v1 vectors and a recomputed v2 fixture.

The v1 vectors come from the official PHP library's tests (my-fatoorah/library,
tests/MyFatoorahHelperTest.php), copied beside this file so the tests need nothing outside
the repository.
"""

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from schema.myfatoorah import (
    body_message,
    load_body,
    sign,
    signature_matches,
    v1_message,
    v2_message,
)

VECTORS: list[dict[str, str]] = json.loads(
    (Path(__file__).parent / "myfatoorah-webhook-v1-vectors.json").read_text(encoding="utf-8")
)["vectors"]
V2_SECRET = "test-webhook-secret"
V2_SIGNATURE = "c+rTI8/6pMWYrglboAwcjU1TBhP8teF7UycJl98xmkw="


def v2_payment_sample() -> dict[str, Any]:
    """The PAYMENT_STATUS_CHANGED sample of MyFatoorah's webhook v2 docs (brief §1.5)."""
    return {
        "Event": {
            "Code": 1,
            "Name": "PAYMENT_STATUS_CHANGED",
            "CountryIsoCode": "KWT",
            "CreationDate": "2026-01-04T08:15:00.9500000Z",
            "Reference": "WH-626519",
        },
        "Data": {
            "Invoice": {
                "Id": "6409988",
                "Status": "PAID",
                "Reference": "2026000123",
                "UserDefinedField": "",
                "ExternalIdentifier": "asdqwd-f13sdf-fasjkz",
                "MetaData": {},
            },
            "Transaction": {
                "Id": "86781",
                "Status": "SUCCESS",
                "PaymentMethod": "VISA/MASTER",
                "PaymentId": "07076409988323998875",
                "ECI": "02",
                "Error": {"Code": "", "Message": ""},
            },
            "Customer": {"Name": "", "Mobile": "+965", "Email": ""},
            "Amount": {"BaseCurrency": "KWD", "ValueInBaseCurrency": "1"},
            "Suppliers": [],
        },
    }


def test_there_are_four_official_vectors() -> None:
    assert len(VECTORS) == 4


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["expected_signature"][:8])
def test_official_v1_vectors(vector: dict[str, str]) -> None:
    body = load_body(vector["body"])
    secret, expected = vector["secret"], vector["expected_signature"]
    assert sign(v1_message(body["Data"]), secret) == expected
    assert body_message(body) == v1_message(body["Data"])
    assert signature_matches(body, secret, expected)
    assert signature_matches(body, secret, f"  {expected}\n")  # header whitespace


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["expected_signature"][:8])
def test_v1_vectors_fail_when_anything_differs(vector: dict[str, str]) -> None:
    body = load_body(vector["body"])
    secret, expected = vector["secret"], vector["expected_signature"]
    assert not signature_matches(body, secret + "x", expected)
    assert not signature_matches(body, secret, None)
    assert not signature_matches(body, "", expected)
    # Decoding the base64-looking secret breaks the vectors: it is used as text.
    decoded = hmac.new(base64.b64decode(secret), v1_message(body["Data"]).encode(), hashlib.sha256)
    assert base64.b64encode(decoded.digest()).decode() != expected
    first_key = next(iter(body["Data"]))
    body["Data"][first_key] = f"{body['Data'][first_key]}0"
    assert not signature_matches(body, secret, expected)


def test_v1_message_sorts_ignoring_case_and_blanks_nulls() -> None:
    data = {"b": 2, "A": None, "c": "x", "Nested": {"k": "v"}, "List": [1]}
    assert v1_message(data) == "A=,b=2,c=x"


def test_the_v2_payment_fixture() -> None:
    body = v2_payment_sample()
    assert v2_message(1, body["Data"]) == (
        "Invoice.Id=6409988,Invoice.Status=PAID,Transaction.Status=SUCCESS,"
        "Transaction.PaymentId=07076409988323998875,Invoice.ExternalIdentifier=asdqwd-f13sdf-fasjkz"
    )
    assert sign(body_message(body), V2_SECRET) == V2_SIGNATURE
    assert signature_matches(body, V2_SECRET, V2_SIGNATURE)
    assert signature_matches(load_body(json.dumps(body)), V2_SECRET, V2_SIGNATURE)


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("Invoice", "Status", "PENDING"),
        ("Invoice", "Id", "6409989"),
        ("Invoice", "ExternalIdentifier", ""),
        ("Transaction", "Status", "FAILED"),
        ("Transaction", "PaymentId", "07076409988323998876"),
    ],
)
def test_a_tampered_v2_body_fails(section: str, field: str, value: str) -> None:
    body = v2_payment_sample()
    body["Data"][section][field] = value
    assert not signature_matches(body, V2_SECRET, V2_SIGNATURE)


def test_the_v2_signature_ignores_unsigned_fields() -> None:
    body = v2_payment_sample()
    body["Data"]["Amount"]["ValueInBaseCurrency"] = "1000"  # not signed in a PAYMENT event
    assert signature_matches(body, V2_SECRET, V2_SIGNATURE)


def test_a_wrong_v2_secret_fails() -> None:
    body = v2_payment_sample()
    assert not signature_matches(body, "wrong-secret", V2_SIGNATURE)
    assert not signature_matches(body, V2_SECRET, sign(body_message(body), "wrong-secret"))


def test_a_body_without_data_never_matches() -> None:
    assert not signature_matches({"Event": {"Code": 1}}, V2_SECRET, V2_SIGNATURE)
    assert not signature_matches({"Event": {"Code": 99}, "Data": {}}, V2_SECRET, V2_SIGNATURE)
