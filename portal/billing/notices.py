"""Webhooks and callbacks from MyFatoorah: verified, recorded once, never believed alone.

A webhook passes when its `MyFatoorah-Signature` matches (v2 body with an `Event`
object, or v1 with `EventType`); it then only names the invoice to ask MyFatoorah
about. Duplicates (KNET sends them) are recognised by v2's `Event.Reference`, or by
v1's PaymentId and TransactionStatus, and need no second look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from portal.exceptions import AuthenticationFailed, InvalidRequest
from schema.db import upsert_insert
from schema.models import PaymentNotice
from schema.myfatoorah import load_body, signature_matches

# v1's EventType and v2's Event.Code: 1 is a payment's status change in both.
PAYMENT_STATUS_CHANGED = 1


class ForgedWebhook(AuthenticationFailed):
    code = "invalid_signature"


@dataclass(frozen=True)
class Notice:
    source: str  # webhook_v1 | webhook_v2 | callback
    dedupe_key: str
    invoice_id: str | None  # None: not about a payment (refunds, deposits...)
    payment_id: str
    status: str


def read_webhook(raw: bytes, signature: str | None, secret: str) -> Notice:
    """Parse and verify; raises ForgedWebhook or InvalidRequest."""
    try:
        body = load_body(raw)
    except ValueError as error:
        raise InvalidRequest("The body is not JSON.", code="invalid_json") from error
    if not isinstance(body, Mapping) or not isinstance(body.get("Data"), Mapping):
        raise InvalidRequest("The body has no Data object.", code="invalid_webhook")
    if not signature_matches(body, secret, signature):
        raise ForgedWebhook("The MyFatoorah-Signature does not match this body.")
    data: Mapping[str, Any] = body["Data"]
    event = body.get("Event")
    if isinstance(event, Mapping):
        return _v2(event, data)
    return _v1(body, data)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _object(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def _invoice_id(code: int, value: Any) -> str | None:
    return (_text(value) or None) if code == PAYMENT_STATUS_CHANGED else None


def _v2(event: Mapping[str, Any], data: Mapping[str, Any]) -> Notice:
    invoice, transaction = _object(data, "Invoice"), _object(data, "Transaction")
    code = int(event.get("Code") or 0)
    payment_id = _text(transaction.get("PaymentId"))
    status = _text(transaction.get("Status")).upper()
    reference = _text(event.get("Reference")) or f"{payment_id}:{status}"
    return Notice(
        "webhook_v2",
        f"v2:{reference}",
        _invoice_id(code, invoice.get("Id")),
        payment_id,
        status,
    )


def _v1(body: Mapping[str, Any], data: Mapping[str, Any]) -> Notice:
    code = int(body.get("EventType") or 0)
    payment_id = _text(data.get("PaymentId"))
    status = _text(data.get("TransactionStatus")).upper()
    return Notice(
        "webhook_v1",
        f"v1:{code}:{payment_id}:{status}",
        _invoice_id(code, data.get("InvoiceId")),
        payment_id,
        status,
    )


def record(session: Session, notice: Notice) -> bool:
    """Store the notice; False if it was seen before (a duplicate delivery)."""
    insert = upsert_insert(session)
    added = session.execute(
        insert(PaymentNotice)
        .values(
            dedupe_key=notice.dedupe_key[:128],
            source=notice.source,
            gateway_invoice_id=notice.invoice_id,
            payment_id=notice.payment_id[:64] or None,
            status=notice.status[:32],
        )
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(PaymentNotice.id)
    ).first()
    return added is not None
