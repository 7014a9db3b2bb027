"""MyFatoorah's webhook signatures, shared by the portal and the test double.

`MyFatoorah-Signature` is base64(HMAC-SHA256(secret as UTF-8 text, "k=v,k=v,...")).

- v1 signs every top-level key of `Data` except nested objects, sorted by name
  ignoring case; a null is an empty string.
- v2 signs a fixed list of fields per event, in a fixed order.

The secret is used as it is, never base64-decoded, although it looks like base64
(decoding it breaks the official vectors). Bodies should be parsed with
`parse_float=str` (`load_body`) so a number is signed exactly as it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "MyFatoorah-Signature"

# v2 event code -> the fields it signs, in order.
V2_SIGNED_FIELDS: dict[int, tuple[str, ...]] = {
    1: (
        "Invoice.Id",
        "Invoice.Status",
        "Transaction.Status",
        "Transaction.PaymentId",
        "Invoice.ExternalIdentifier",
    ),
    2: ("Refund.Id", "Refund.Status", "Amount.ValueInBaseCurrency", "ReferencedInvoice.Id"),
    3: ("Deposit.Reference", "Deposit.ValueInBaseCurrency", "Deposit.NumberOfTransactions"),
}


def load_body(raw: bytes | str) -> Any:
    """Parse a webhook body keeping numbers as the text that was signed."""
    return json.loads(raw, parse_float=str)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def v1_message(data: Mapping[str, Any]) -> str:
    flat = [(key, value) for key, value in data.items() if not isinstance(value, dict | list)]
    flat.sort(key=lambda pair: pair[0].lower())
    return ",".join(f"{key}={_text(value)}" for key, value in flat)


def _field(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def v2_message(event_code: int, data: Mapping[str, Any]) -> str:
    fields = V2_SIGNED_FIELDS.get(event_code)
    if fields is None:
        raise ValueError(f"no v2 signature scheme for event code {event_code}")
    return ",".join(f"{name}={_text(_field(data, name))}" for name in fields)


def sign(message: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def body_message(body: Mapping[str, Any]) -> str:
    """The signed text of a v1 or v2 webhook body (v2 has an `Event` object)."""
    data = body.get("Data")
    if not isinstance(data, Mapping):
        raise ValueError("the webhook body has no Data object")
    event = body.get("Event")
    if isinstance(event, Mapping):
        return v2_message(int(event.get("Code", 0)), data)
    return v1_message(data)


def signature_matches(body: Mapping[str, Any], secret: str, signature: str | None) -> bool:
    if not signature or not secret:
        return False
    try:
        expected = sign(body_message(body), secret)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected.encode(), signature.strip().encode())
