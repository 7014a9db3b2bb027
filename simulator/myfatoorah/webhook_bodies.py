"""Webhook bodies for a transaction (brief §1.5), signed with `schema.myfatoorah`."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from schema.myfatoorah import sign, v1_message, v2_message
from simulator.myfatoorah.models import Invoice, Transaction
from simulator.myfatoorah.wire import compact, dumps, plain_text, utc_text

COUNTRY = "KWT"
BASE_CURRENCY = "KWD"
PAYMENT_EVENT_CODE = 1


@dataclass(frozen=True)
class WebhookEvent:
    reference: str  # v2 `Event.Reference`; v1 has none, duplicates share it all the same
    version: int
    body: dict[str, Any]
    signature: str
    forged: bool = False

    @property
    def raw(self) -> bytes:
        return dumps(self.body)


def v1_body(invoice: Invoice, transaction: Transaction, now: datetime) -> dict[str, Any]:
    request = invoice.request
    value = plain_text(invoice.value)
    data = {
        "InvoiceId": invoice.id,
        "InvoiceReference": invoice.reference,
        "CreatedDate": compact(invoice.created),
        "CustomerReference": request.customer_reference,
        "CustomerName": request.customer_name,
        "CustomerMobile": request.customer_mobile,
        "CustomerEmail": request.customer_email,
        "TransactionStatus": "SUCCESS" if transaction.succeeded else "FAILED",
        "PaymentMethod": transaction.gateway,
        "UserDefinedField": request.user_defined_field,
        "ReferenceId": transaction.reference_id,
        "TrackId": transaction.track_id,
        "PaymentId": transaction.payment_id,
        "AuthorizationId": transaction.authorization_id,
        "InvoiceValueInBaseCurrency": value,
        "BaseCurrency": BASE_CURRENCY,
        "InvoiceValueInDisplayCurreny": value,  # sic: the real field name
        "DisplayCurrency": request.display_currency,
        "InvoiceValueInPayCurrency": value,
        "PayCurrency": BASE_CURRENCY,
    }
    return {
        "EventType": 1,
        "Event": "TransactionsStatusChanged",
        "DateTime": compact(now),
        "CountryIsoCode": COUNTRY,
        "Data": data,
    }


def _v2_transaction(transaction: Transaction) -> dict[str, Any]:
    return {
        "Id": str(transaction.id),
        "Status": "SUCCESS" if transaction.succeeded else "FAILED",
        "PaymentMethod": transaction.gateway,
        "PaymentId": transaction.payment_id,
        "ReferenceId": transaction.reference_id,
        "TrackId": transaction.track_id,
        "AuthorizationId": transaction.authorization_id,
        "TransactionDate": utc_text(transaction.created),
        "ECI": "02" if transaction.succeeded else "",
        "IP": {"Address": "127.0.0.1", "Country": "Kuwait"},
        "Error": {"Code": transaction.error_code or "", "Message": transaction.error or ""},
        "Card": {
            "NameOnCard": "",
            "Number": transaction.card_number,
            "Token": "",
            "Brand": transaction.card_brand,
            "Issuer": "",
            "IssuerCountry": "",
            "FundingMethod": "credit",
        },
    }


def v2_body(
    invoice: Invoice, transaction: Transaction, now: datetime, reference: str
) -> dict[str, Any]:
    request = invoice.request
    value = plain_text(invoice.value)
    zero = plain_text(Decimal(0))
    return {
        "Event": {
            "Code": PAYMENT_EVENT_CODE,
            "Name": "PAYMENT_STATUS_CHANGED",
            "CountryIsoCode": COUNTRY,
            "CreationDate": utc_text(now),
            "Reference": reference,
        },
        "Data": {
            "Invoice": {
                "Id": str(invoice.id),
                "Status": "PAID" if invoice.paid else "PENDING",
                "Reference": invoice.reference,
                "CreationDate": utc_text(invoice.created),
                "ExpirationDate": utc_text(invoice.expires),
                "ExternalIdentifier": request.external_identifier or "",
                "UserDefinedField": request.user_defined_field or "",
                "MetaData": {},
            },
            "Transaction": _v2_transaction(transaction),
            "Customer": {
                "Name": request.customer_name or "",
                "Mobile": f"{request.mobile_country_code or '+965'}{request.customer_mobile or ''}",
                "Email": request.customer_email or "",
                "Reference": request.customer_reference or "",
            },
            "Amount": {
                "BaseCurrency": BASE_CURRENCY,
                "ValueInBaseCurrency": value,
                "ServiceCharge": zero,
                "ServiceChargeVAT": zero,
                "ReceivableAmount": value,
                "DisplayCurrency": request.display_currency,
                "ValueInDisplayCurrency": value,
                "PayCurrency": BASE_CURRENCY,
                "ValueInPayCurrency": value,
            },
            "Suppliers": [],
        },
    }


def payment_event(
    invoice: Invoice,
    transaction: Transaction,
    *,
    version: int,
    secret: str,
    reference: str,
    now: datetime,
    forged: bool = False,
) -> WebhookEvent:
    if version == 1:
        body = v1_body(invoice, transaction, now)
        message = v1_message(body["Data"])
    else:
        body = v2_body(invoice, transaction, now, reference)
        message = v2_message(PAYMENT_EVENT_CODE, body["Data"])
    # A forged event is signed with a secret the receiver does not know.
    signature = sign(message, f"forged-{secret}" if forged else secret)
    return WebhookEvent(reference, version, body, signature, forged)
