"""A MyFatoorah API v2 client: create invoices, read their status, request refunds.

    MyFatoorahError
    ├── GatewayUnreachable    no answer, a 5xx, or a body that is not the envelope
    ├── GatewayAuthFailed     the token is wrong or expired (MyFatoorah sends an empty body)
    └── GatewayRejected       IsSuccess false: the message and the validation errors

Hosts: `https://apitest.myfatoorah.com` for tests (all countries); live
`https://api.myfatoorah.com` (Kuwait, Bahrain, Jordan, Oman) or `api-ae`, `api-sa`,
`api-qa`, `api-eg` `.myfatoorah.com`; the base URL is a setting (MYFATOORAH_BASE_URL).
Success is decided on `IsSuccess`, never on the HTTP status (MyFatoorah's status codes
are not documented). Money goes out as a 3-decimal JSON number built from integer fils
and comes back parsed as Decimal, never float.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from schema.money import kwd_number


class MyFatoorahError(Exception):
    pass


class GatewayUnreachable(MyFatoorahError):
    pass


class GatewayAuthFailed(MyFatoorahError):
    pass


class GatewayRejected(MyFatoorahError):
    def __init__(self, message: str, errors: tuple[tuple[str, str], ...] = ()) -> None:
        detail = "; ".join(f"{name}: {error}" for name, error in errors)
        super().__init__(f"{message} ({detail})" if detail else message)
        self.errors = errors


@dataclass(frozen=True)
class CreatedInvoice:
    invoice_id: str
    payment_url: str


@dataclass(frozen=True)
class Transaction:
    payment_id: str
    status: str  # InProgress | Succss | Failed | Authorize | Canceled
    error_code: str
    gateway: str

    @property
    def succeeded(self) -> bool:
        # "Succss" is how the live API spells it; accept the dictionary spelling too.
        return self.status.lower() in {"succss", "success"}


@dataclass(frozen=True)
class PaymentStatus:
    invoice_id: str
    invoice_status: str  # Paid | Pending
    customer_reference: str
    invoice_value: Decimal
    display_value: str  # "12,345.000 KD"
    transactions: tuple[Transaction, ...]

    @property
    def paid(self) -> bool:
        return self.invoice_status.lower() in {"paid", "duplicatepayment"} and any(
            t.succeeded for t in self.transactions
        )

    @property
    def successful_transaction(self) -> Transaction | None:
        return next((t for t in self.transactions if t.succeeded), None)

    @property
    def last_transaction(self) -> Transaction | None:
        return self.transactions[-1] if self.transactions else None


@dataclass(frozen=True)
class Refund:
    refund_id: str
    refund_reference: str
    amount: Decimal


def _dumps(value: Any) -> str:
    """JSON in which a Decimal is a number written exactly as its text (2.500, not 2.5)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


class MyFatoorahClient:
    """Synchronous on purpose: the api calls it from worker threads, RQ jobs directly."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._http.post(
                f"/v2/{endpoint}",
                content=_dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as error:
            raise GatewayUnreachable(f"{endpoint}: {error!r}") from error
        if not response.content.strip():
            if response.status_code >= 500:
                raise GatewayUnreachable(f"{endpoint}: HTTP {response.status_code}, no body")
            raise GatewayAuthFailed("The token is not valid or it is expired!")
        try:
            envelope = json.loads(response.content, parse_float=Decimal)
        except ValueError as error:
            raise GatewayUnreachable(
                f"{endpoint}: HTTP {response.status_code}, not JSON"
            ) from error
        if not isinstance(envelope, dict) or "IsSuccess" not in envelope:
            raise GatewayUnreachable(f"{endpoint}: HTTP {response.status_code}, no envelope")
        if envelope["IsSuccess"] is not True:
            raise _rejection(envelope)
        data = envelope.get("Data")
        return data if isinstance(data, dict) else {}

    def initiate_payment(self, *, amount_fils: int, currency: str = "KWD") -> list[dict[str, Any]]:
        data = self._call(
            "InitiatePayment", {"InvoiceAmount": kwd_number(amount_fils), "CurrencyIso": currency}
        )
        methods = data.get("PaymentMethods")
        return [m for m in methods if isinstance(m, dict)] if isinstance(methods, list) else []

    def execute_payment(
        self, *, payment_method_id: int, invoice: dict[str, Any], amount_fils: int
    ) -> CreatedInvoice:
        data = self._call(
            "ExecutePayment",
            {
                **invoice,
                "InvoiceValue": kwd_number(amount_fils),
                "PaymentMethodId": payment_method_id,
            },
        )
        return CreatedInvoice(str(data["InvoiceId"]), str(data["PaymentURL"]))

    def send_payment(self, *, invoice: dict[str, Any], amount_fils: int) -> CreatedInvoice:
        """An invoice with a link to MyFatoorah's page, where the customer picks a method."""
        data = self._call(
            "SendPayment",
            {**invoice, "InvoiceValue": kwd_number(amount_fils), "NotificationOption": "LNK"},
        )
        return CreatedInvoice(str(data["InvoiceId"]), str(data["InvoiceURL"]))

    def get_payment_status(self, *, key: str, key_type: str) -> PaymentStatus:
        data = self._call("GetPaymentStatus", {"Key": key, "KeyType": key_type})
        return _payment_status(data)

    def make_refund(
        self, *, invoice_id: str, amount_fils: int, comment: str, external_id: str
    ) -> Refund:
        data = self._call(
            "MakeRefund",
            {
                "KeyType": "InvoiceId",
                "Key": invoice_id,
                "Amount": kwd_number(amount_fils),
                "ServiceChargeOnCustomer": False,
                "Comment": comment,
                "ExternalIdentifier": external_id,
            },
        )
        return Refund(
            str(data.get("RefundId", "")),
            str(data.get("RefundReference", "")),
            Decimal(str(data.get("Amount", "0"))),
        )


def _rejection(envelope: dict[str, Any]) -> GatewayRejected:
    errors = envelope.get("ValidationErrors") or envelope.get("FieldsErrors") or []
    pairs = tuple(
        (str(e.get("Name", "")), str(e.get("Error", ""))) for e in errors if isinstance(e, dict)
    )
    data = envelope.get("Data")
    message = (data.get("ErrorMessage") if isinstance(data, dict) else None) or envelope.get(
        "Message"
    )
    return GatewayRejected(str(message or "MyFatoorah refused the request"), pairs)


def _payment_status(data: dict[str, Any]) -> PaymentStatus:
    transactions = tuple(
        Transaction(
            payment_id=str(t.get("PaymentId") or ""),
            status=str(t.get("TransactionStatus") or ""),
            error_code=str(t.get("ErrorCode") or ""),
            gateway=str(t.get("PaymentGateway") or ""),
        )
        for t in data.get("InvoiceTransactions") or []
        if isinstance(t, dict)
    )
    return PaymentStatus(
        invoice_id=str(data.get("InvoiceId", "")),
        invoice_status=str(data.get("InvoiceStatus") or ""),
        customer_reference=str(data.get("CustomerReference") or ""),
        invoice_value=Decimal(str(data.get("InvoiceValue", "0"))),
        display_value=str(data.get("InvoiceDisplayValue") or ""),
        transactions=transactions,
    )
