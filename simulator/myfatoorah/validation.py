"""The `/v2` request bodies, validated into typed requests (or one `Invalid data` error)."""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator.myfatoorah.fields import Fields
from simulator.myfatoorah.methods import BY_ID
from simulator.myfatoorah.models import InvoiceItem, InvoiceRequest

MOBILE = re.compile(r"^(?:(\+)|(00)|(\*)|())[0-9]{3,14}((\#)|())$")
MOBILE_MAX_LENGTH = 11
COUNTRY_CODE = re.compile(r"\+?[0-9]{1,4}")
CURRENCIES = ("KWD",)  # the test account is in KWD; the double has no exchange rates
NOTIFICATION_OPTIONS = ("LNK", "EML", "SMS", "ALL")
STATUS_KEY_TYPES = ("InvoiceId", "PaymentId", "CustomerReference")
REFUND_KEY_TYPES = ("InvoiceId", "PaymentId")
REFUND_STATUS_KEY_TYPES = ("InvoiceId", "RefundReference", "RefundId")


@dataclass(frozen=True)
class Lookup:
    key: str
    key_type: str


@dataclass(frozen=True)
class RefundRequest:
    lookup: Lookup
    amount: Decimal
    service_charge_on_customer: bool
    comment: str | None
    external_identifier: str | None


def parse_initiate(body: Any) -> tuple[Decimal, str]:
    fields = Fields(body)
    amount = fields.amount("InvoiceAmount", required=True)
    currency = fields.choice("CurrencyIso", CURRENCIES, required=True)
    fields.check()
    assert amount is not None and currency is not None
    return amount, currency


def _items(fields: Fields) -> tuple[InvoiceItem, ...]:
    raw = fields.raw("InvoiceItems")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        fields.error("InvoiceItems", "The InvoiceItems field must be a list.")
        return ()
    items: list[InvoiceItem] = []
    for index, entry in enumerate(raw):
        item = Fields(entry) if isinstance(entry, dict) else None
        if item is None:
            fields.error(f"InvoiceItems[{index}]", "An invoice item must be an object.")
            continue
        name = item.text("ItemName", required=True, max_length=1500)
        quantity = item.integer("Quantity", required=True)
        if quantity is not None and quantity <= 0:
            item.error("Quantity", "The Quantity field must be greater than zero.")
        price = item.amount("UnitPrice", required=True)
        fields.errors.extend((f"InvoiceItems[{index}].{n}", e) for n, e in item.errors)
        if not item.errors and name and quantity is not None and price is not None:
            items.append(InvoiceItem(name, quantity, price))
    return tuple(items)


def _payment_choice(fields: Fields) -> tuple[int | None, str | None]:
    method_id = fields.integer("PaymentMethodId")
    session_id = fields.text("SessionId")
    has_method = fields.given("PaymentMethodId")
    if has_method == bool(session_id):
        fields.error("PaymentMethodId", "Provide exactly one of PaymentMethodId or SessionId.")
    elif method_id is not None and method_id not in BY_ID:
        fields.error("PaymentMethodId", "The payment method is not available.")
    return method_id, session_id or None


def _notification(fields: Fields, email: str | None, mobile: str | None) -> str | None:
    option = fields.choice("NotificationOption", NOTIFICATION_OPTIONS, required=True)
    if option in {"EML", "ALL"} and not email:
        fields.error("CustomerEmail", "The CustomerEmail field is required to notify by e-mail.")
    if option in {"SMS", "ALL"} and not mobile:
        fields.error("CustomerMobile", "The CustomerMobile field is required to notify by SMS.")
    return option


def parse_invoice(body: Any, *, send: bool) -> InvoiceRequest:
    """ExecutePayment (`send=False`) or SendPayment (`send=True`)."""
    fields = Fields(body)
    value = fields.amount("InvoiceValue", required=True)
    method_id, session_id = (None, None) if send else _payment_choice(fields)
    email = fields.email("CustomerEmail")
    mobile = fields.pattern("CustomerMobile", MOBILE, MOBILE_MAX_LENGTH)
    request = InvoiceRequest(
        value=value or Decimal(0),
        payment_method_id=method_id,
        session_id=session_id,
        customer_name=fields.text("CustomerName", required=send, max_length=500),
        customer_mobile=mobile or None,
        mobile_country_code=fields.pattern("MobileCountryCode", COUNTRY_CODE, 5) or None,
        customer_email=email,
        customer_reference=fields.text("CustomerReference", max_length=500),
        user_defined_field=fields.text("UserDefinedField", max_length=500),
        external_identifier=fields.text("ExternalIdentifier", max_length=500),
        callback_url=fields.url("CallBackUrl"),
        error_url=fields.url("ErrorUrl"),
        language=(fields.choice("Language", ("en", "ar")) or "en"),
        display_currency=(fields.choice("DisplayCurrencyIso", CURRENCIES) or "KWD"),
        notification_option=_notification(fields, email, mobile) if send else None,
        expiry=fields.moment("ExpiryDate"),
        items=_items(fields),
    )
    total = sum((item.unit_price * item.quantity for item in request.items), Decimal(0))
    if value is not None and request.items and total != value:
        fields.error("InvoiceItems", f"The items add up to {total}, not the InvoiceValue {value}.")
    fields.check()
    return request


def parse_lookup(body: Any, key_types: tuple[str, ...]) -> Lookup:
    fields = Fields(body)
    key = fields.text("Key", required=True, max_length=500)
    key_type = fields.choice("KeyType", key_types, required=True)
    fields.check()
    assert key is not None and key_type is not None
    return Lookup(key.strip(), key_type)


def parse_refund(body: Any) -> RefundRequest:
    fields = Fields(body)
    key = fields.text("Key", required=True, max_length=500)
    key_type = fields.choice("KeyType", REFUND_KEY_TYPES, required=True)
    amount = fields.amount("Amount", required=True)
    request = RefundRequest(
        lookup=Lookup((key or "").strip(), key_type or ""),
        amount=amount or Decimal(0),
        service_charge_on_customer=fields.boolean("ServiceChargeOnCustomer"),
        comment=fields.text("Comment", max_length=500),
        external_identifier=fields.text("ExternalIdentifier", max_length=500),
    )
    fields.check()
    return request
