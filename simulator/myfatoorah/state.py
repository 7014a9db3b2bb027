"""The double's memory, shared by the server thread and the tests: every method locks."""

import copy
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.myfatoorah.config import MyFatoorahConfig
from simulator.myfatoorah.envelope import ApiError, invalid
from simulator.myfatoorah.faults import FaultInjector, FaultMode
from simulator.myfatoorah.models import Invoice, InvoiceRequest, Refund
from simulator.myfatoorah.payments import (
    PaymentOutcome,
    check_payable,
    new_transaction,
    redirect_target,
)
from simulator.myfatoorah.refunds import RefundBook
from simulator.myfatoorah.validation import Lookup, RefundRequest
from simulator.myfatoorah.webhook_bodies import WebhookEvent, payment_event
from simulator.myfatoorah.webhooks import Delivery, ReleaseOrder, WebhookSender


def first_id(config: MyFatoorahConfig) -> int:
    """Where the id counters start: by default the clock in tenths of a second, so a restarted
    double (make run) or another one on the same database never reuses an invoice id or
    a webhook reference that is already stored."""
    return config.first_id if config.first_id is not None else int(time.time() * 10)


NO_MATCH = "No data match the provided key."


def utc_now() -> datetime:
    return datetime.now(UTC)


class MyFatoorahState:
    def __init__(self, config: MyFatoorahConfig) -> None:
        self.config = self._initial_config = config
        self.server_url: str | None = None  # set once the server listens
        self.faults = FaultInjector()
        self.webhooks = WebhookSender(lambda: self.config)
        self._lock = threading.RLock()
        self._invoices: dict[int, Invoice] = {}
        start = first_id(config)
        self._next_invoice = self._next_transaction = self._next_event = start
        self.refunds = RefundBook(self._lock, self._take_invoice_id)

    def reset(self) -> None:
        """Forget everything but the id counters, and return to the first config.

        Ids keep increasing, as the real service's do, so a merchant database that outlives
        the reset never sees an InvoiceId or PaymentId twice.
        """
        self.webhooks.reset()
        self.faults.clear()
        with self._lock:
            self.config = self._initial_config
            self._invoices.clear()
            self.refunds.clear()

    def configure(self, **changes: Any) -> MyFatoorahConfig:
        self.config = MyFatoorahConfig.model_validate({**self.config.model_dump(), **changes})
        return self.config

    def public_url(self, fallback: str = "") -> str:
        return (self.config.public_url or self.server_url or fallback).rstrip("/")

    def inject_fault(self, mode: FaultMode, count: int = 1) -> None:
        """The next `count` API calls fail: "down" (connection closed), "500", "empty"."""
        self.faults.inject(mode, count)

    # Invoices

    def _take_invoice_id(self) -> int:
        with self._lock:
            invoice_id, self._next_invoice = self._next_invoice, self._next_invoice + 1
            return invoice_id

    def create_invoice(self, request: InvoiceRequest, *, base_url: str = "") -> Invoice:
        now = utc_now()
        expires = request.expiry or now + timedelta(seconds=self.config.invoice_ttl_s)
        if expires <= now:
            raise invalid([("ExpiryDate", "The ExpiryDate must be in the future.")])
        with self._lock:
            invoice_id = self._take_invoice_id()
            invoice = Invoice(
                id=invoice_id,
                reference=f"{now.year}{invoice_id % 10**6:06d}",
                created=now,
                expires=expires,
                request=request,
                url=f"{self.public_url(base_url)}/pay/{invoice_id}",
            )
            self._invoices[invoice_id] = invoice
            return copy.deepcopy(invoice)

    def invoice(self, invoice_id: int) -> Invoice | None:
        with self._lock:
            found = self._invoices.get(invoice_id)
            return copy.deepcopy(found)

    def invoices(self) -> list[Invoice]:
        with self._lock:
            return copy.deepcopy(list(self._invoices.values()))

    def find_invoice(self, lookup: Lookup) -> Invoice:
        """GetPaymentStatus's search; `CustomerReference` finds the newest invoice with it."""
        with self._lock:
            found = self._find(lookup)
            if found is None:
                raise ApiError(NO_MATCH)
            return copy.deepcopy(found)

    def _find(self, lookup: Lookup) -> Invoice | None:
        key = lookup.key
        if lookup.key_type == "InvoiceId":
            known = key.isascii() and key.isdigit() and len(key) < 12
            return self._invoices.get(int(key)) if known else None
        for invoice in reversed(self._invoices.values()):  # newest first
            if lookup.key_type == "CustomerReference":
                if invoice.request.customer_reference == key:
                    return invoice
            elif any(t.payment_id == key for t in invoice.transactions):
                return invoice
        return None

    def expire_invoice(self, invoice_id: int) -> None:
        with self._lock:
            self._invoices[invoice_id].expires = utc_now() - timedelta(seconds=1)

    # The payment page

    def pay(self, invoice_id: int, card_number: str) -> PaymentOutcome:
        """What the payment page's form does: one transaction, then its webhooks."""
        now = utc_now()
        with self._lock:
            invoice = check_payable(self._invoices.get(invoice_id), invoice_id, now)
            transaction = new_transaction(invoice, card_number, self._next_transaction, now)
            self._next_transaction += 1
            invoice.transactions.append(transaction)
            events = [self._payment_event(invoice, now)] if self.config.webhook_url else []
            outcome = PaymentOutcome(
                invoice_id=invoice.id,
                payment_id=transaction.payment_id,
                succeeded=transaction.succeeded,
                transaction_status=transaction.status,
                redirect_url=redirect_target(invoice, transaction),
            )
        self.webhooks.submit(events)
        return outcome

    def _payment_event(self, invoice: Invoice, now: datetime, forged: bool = False) -> WebhookEvent:
        reference = f"WH-{self._next_event}"
        self._next_event += 1
        return payment_event(
            invoice,
            invoice.transactions[-1],
            version=self.config.webhook_version,
            secret=self.config.webhook_secret,
            reference=reference,
            now=now,
            forged=forged,
        )

    # Refunds

    def make_refund(self, request: RefundRequest) -> Refund:
        with self._lock:
            invoice = self._find(request.lookup)
            if invoice is None:
                raise ApiError(NO_MATCH)
            if request.lookup.key_type == "PaymentId" and not any(
                t.succeeded and t.payment_id == request.lookup.key for t in invoice.transactions
            ):
                raise ApiError("Only a successful payment can be refunded.")
            return self.refunds.create(invoice, request, utc_now())

    # Webhooks

    @property
    def deliveries(self) -> list[Delivery]:
        return self.webhooks.deliveries

    def release_webhooks(self, order: ReleaseOrder = "sent") -> list[Delivery]:
        """Deliver the held webhooks now, synchronously; the last attempt of each."""
        return self.webhooks.release(order)

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        return self.webhooks.wait(timeout)

    def deliver_forged(self, invoice_id: int | None = None) -> list[Delivery]:
        """Send, now, the newest transaction's webhook signed with a wrong secret."""
        with self._lock:
            paid_at = [i for i in self._invoices.values() if i.transactions]
            if invoice_id is not None:
                paid_at = [i for i in paid_at if i.id == invoice_id]
            if not paid_at:
                raise LookupError("no invoice with a transaction to forge a webhook for")
            event = self._payment_event(paid_at[-1], utc_now(), forged=True)
        return self.webhooks.deliver([event])
