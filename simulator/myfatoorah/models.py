"""What the double remembers: invoices, their transactions, refunds."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class InvoiceItem:
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class InvoiceRequest:
    """A validated ExecutePayment / SendPayment body."""

    value: Decimal
    payment_method_id: int | None = None
    session_id: str | None = None
    customer_name: str | None = None
    customer_mobile: str | None = None
    mobile_country_code: str | None = None
    customer_email: str | None = None
    customer_reference: str | None = None
    user_defined_field: str | None = None
    external_identifier: str | None = None
    callback_url: str | None = None
    error_url: str | None = None
    language: str = "en"
    display_currency: str = "KWD"
    notification_option: str | None = None  # SendPayment only
    expiry: datetime | None = None
    items: tuple[InvoiceItem, ...] = ()


@dataclass
class Transaction:
    id: int
    payment_id: str
    created: datetime
    gateway: str
    card_number: str  # masked
    card_brand: str
    value: Decimal
    error_code: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error_code is None

    @property
    def status(self) -> str:
        return "Succss" if self.succeeded else "Failed"  # sic: the real API's spelling

    @property
    def reference_id(self) -> str:
        return f"{self.id:012d}"

    @property
    def track_id(self) -> str:
        return f"{self.created:%d-%m-%Y}_{self.id}"

    @property
    def authorization_id(self) -> str:
        return f"{self.id % 1_000_000:06d}" if self.succeeded else ""


@dataclass
class Invoice:
    id: int
    reference: str
    created: datetime
    expires: datetime
    request: InvoiceRequest
    url: str  # the payment page: PaymentURL / InvoiceURL
    transactions: list[Transaction] = field(default_factory=list)

    @property
    def value(self) -> Decimal:
        return self.request.value

    @property
    def paid(self) -> bool:
        return any(t.succeeded for t in self.transactions)

    @property
    def status(self) -> str:
        return "Paid" if self.paid else "Pending"

    def expired(self, now: datetime) -> bool:
        return now >= self.expires


@dataclass
class Refund:
    id: int
    reference: str
    refund_invoice_id: int
    invoice_id: int
    amount: Decimal
    comment: str | None
    external_identifier: str | None
    service_charge_on_customer: bool
    created: datetime
    status: str = "Pending"  # Refunded / Canceled once MyFatoorah's finance team acts
