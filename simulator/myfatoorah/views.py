"""Invoices and refunds as the `/v2` responses show them (brief §1.2-1.4)."""

from decimal import Decimal
from typing import Any

from simulator.myfatoorah.models import Invoice, Refund, Transaction
from simulator.myfatoorah.wire import clock_time, local_iso, long_date, money, money_text

CURRENCY_TEXT = "KD"  # how the API writes KWD in display strings


def execute_data(invoice: Invoice) -> dict[str, Any]:
    return {
        "InvoiceId": invoice.id,
        "IsDirectPayment": False,
        "PaymentURL": invoice.url,
        "CustomerReference": invoice.request.customer_reference,
        "UserDefinedField": invoice.request.user_defined_field,
        "RecurringId": "",
    }


def send_data(invoice: Invoice) -> dict[str, Any]:
    return {
        "InvoiceId": invoice.id,
        "InvoiceURL": invoice.url,
        "CustomerReference": invoice.request.customer_reference,
        "UserDefinedField": invoice.request.user_defined_field,
    }


def transaction_data(transaction: Transaction) -> dict[str, Any]:
    value = money_text(transaction.value)
    return {
        "TransactionDate": local_iso(transaction.created),
        "PaymentGateway": transaction.gateway,
        "ReferenceId": transaction.reference_id,
        "TrackId": transaction.track_id,
        "TransactionId": str(transaction.id),
        "PaymentId": transaction.payment_id,
        "AuthorizationId": transaction.authorization_id,
        "TransactionStatus": transaction.status,
        "TransationValue": value,  # sic: the real field name
        "CustomerServiceCharge": money_text(Decimal(0)),
        "TotalServiceCharge": money_text(Decimal(0)),
        "DueValue": value,
        "PaidCurrency": CURRENCY_TEXT,
        "PaidCurrencyValue": value,
        "IpAddress": "127.0.0.1",
        "Country": "Kuwait",
        "Currency": CURRENCY_TEXT,
        "Error": transaction.error,
        "ErrorCode": transaction.error_code or "",
        "CardNumber": transaction.card_number,
        "Card": {
            "NameOnCard": "",
            "Number": transaction.card_number,
            "Brand": transaction.card_brand,
            "Issuer": "",
            "IssuerCountry": "",
            "FundingMethod": "credit",
        },
    }


def status_data(invoice: Invoice) -> dict[str, Any]:
    request = invoice.request
    return {
        "InvoiceId": invoice.id,
        "InvoiceStatus": invoice.status,
        "InvoiceReference": invoice.reference,
        "CustomerReference": request.customer_reference,
        "CreatedDate": local_iso(invoice.created),
        "ExpiryDate": long_date(invoice.expires),
        "ExpiryTime": clock_time(invoice.expires),
        "InvoiceValue": money(invoice.value),
        "Comments": None,
        "CustomerName": request.customer_name,
        "CustomerMobile": request.customer_mobile,
        "CustomerEmail": request.customer_email,
        "UserDefinedField": request.user_defined_field,
        "InvoiceDisplayValue": f"{money_text(invoice.value)} {CURRENCY_TEXT}",
        "DueDeposit": money(Decimal(0)),
        "DepositStatus": "Not Deposited",
        "InvoiceItems": [
            {"ItemName": item.name, "Quantity": item.quantity, "UnitPrice": money(item.unit_price)}
            for item in request.items
        ],
        "InvoiceTransactions": [transaction_data(t) for t in invoice.transactions],
        "Suppliers": [],
    }


def refund_data(refund: Refund) -> dict[str, Any]:
    return {
        "RefundId": refund.id,
        "RefundReference": refund.reference,
        "RefundInvoiceId": refund.refund_invoice_id,
        "Amount": money(refund.amount),
        "Comment": refund.comment,
        "ExternalIdentifier": refund.external_identifier,
    }


def refund_status_entry(refund: Refund) -> dict[str, Any]:
    return {
        "RefundId": refund.id,
        "RefundReference": refund.reference,
        "RefundStatus": refund.status,
        "InvoiceId": refund.invoice_id,
        "RefundInvoiceId": refund.refund_invoice_id,
        "RefundAmount": money(refund.amount),
        "Comment": refund.comment,
        "ExternalIdentifier": refund.external_identifier,
        "RefundDate": local_iso(refund.created),
    }
