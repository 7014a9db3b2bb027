"""One attempt to pay an invoice on the payment page, and where the browser goes next."""

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from simulator.myfatoorah.cards import card_outcome, mask_card, normalize_card
from simulator.myfatoorah.methods import BY_ID, CARD_GATEWAY
from simulator.myfatoorah.models import Invoice, Transaction


class PaymentRefused(Exception):
    """The payment page refuses the attempt; no transaction is made."""

    statuses: ClassVar[dict[str, int]] = {
        "unknown_invoice": 404,
        "already_paid": 409,
        "expired": 410,
        "missing_card": 400,
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return self.statuses[self.code]


@dataclass(frozen=True)
class PaymentOutcome:
    invoice_id: int
    payment_id: str
    succeeded: bool
    transaction_status: str
    redirect_url: str


def check_payable(invoice: Invoice | None, invoice_id: int, now: datetime) -> Invoice:
    if invoice is None:
        raise PaymentRefused("unknown_invoice", f"Invoice {invoice_id} does not exist.")
    if invoice.paid:
        raise PaymentRefused("already_paid", "This invoice is already paid.")
    if invoice.expired(now):
        raise PaymentRefused("expired", "This invoice has expired.")
    return invoice


def new_transaction(
    invoice: Invoice, card_number: str, transaction_id: int, now: datetime
) -> Transaction:
    card_number = normalize_card(card_number)
    if not card_number:
        raise PaymentRefused("missing_card", "Enter a card number.")
    outcome = card_outcome(card_number)
    method = BY_ID.get(invoice.request.payment_method_id or 0)
    return Transaction(
        id=transaction_id,
        payment_id=f"0707{invoice.id % 10**8:08d}{transaction_id % 10**8:08d}",
        created=now,
        gateway=method.gateway if method else CARD_GATEWAY,
        card_number=mask_card(card_number),
        card_brand=outcome.brand,
        value=invoice.value,
        error_code=outcome.error_code,
        error=outcome.error,
    )


def with_payment_id(url: str, payment_id: str) -> str:
    """`https://shop/cb?order=1` -> `https://shop/cb?order=1&paymentId=X&Id=X`."""
    parts = urlsplit(url)
    added = f"paymentId={payment_id}&Id={payment_id}"
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


def redirect_target(invoice: Invoice, transaction: Transaction) -> str:
    request = invoice.request
    if transaction.succeeded:
        target = request.callback_url
    else:
        target = request.error_url or request.callback_url
    # Without a callback URL MyFatoorah shows its own result page.
    return with_payment_id(target or f"{invoice.url}/result", transaction.payment_id)
