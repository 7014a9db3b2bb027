"""Refund requests: created against a paid invoice, never beyond what is left to refund."""

import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from simulator.myfatoorah.envelope import ApiError
from simulator.myfatoorah.models import Invoice, Refund
from simulator.myfatoorah.validation import Lookup, RefundRequest
from simulator.myfatoorah.wire import money_text

FIRST_REFUND_ID = 5_001
REFUND_STATUSES = ("Pending", "Refunded", "Canceled")


class RefundBook:
    def __init__(self, lock: threading.RLock, take_invoice_id: Callable[[], int]) -> None:
        self._lock = lock  # the state's lock: refunds are checked against its invoices
        self._take_invoice_id = take_invoice_id
        self._refunds: dict[int, Refund] = {}
        self._next_id = FIRST_REFUND_ID

    def refundable(self, invoice: Invoice) -> Decimal:
        paid = sum((t.value for t in invoice.transactions if t.succeeded), Decimal(0))
        with self._lock:
            taken = sum(
                (
                    r.amount
                    for r in self._refunds.values()
                    if r.invoice_id == invoice.id and r.status != "Canceled"
                ),
                Decimal(0),
            )
        return paid - taken

    def create(self, invoice: Invoice, request: RefundRequest, now: datetime) -> Refund:
        if not invoice.paid:
            raise ApiError("The invoice is not paid, so it cannot be refunded.")
        with self._lock:
            left = self.refundable(invoice)
            if request.amount > left:
                message = f"The refund is more than the amount left to refund ({money_text(left)})."
                raise ApiError(message, [("Amount", message)])
            refund_id, self._next_id = self._next_id, self._next_id + 1
            refund = Refund(
                id=refund_id,
                reference=f"{now.year}{refund_id % 10**6:06d}",
                refund_invoice_id=self._take_invoice_id(),
                invoice_id=invoice.id,
                amount=request.amount,
                comment=request.comment,
                external_identifier=request.external_identifier,
                service_charge_on_customer=request.service_charge_on_customer,
                created=now,
            )
            self._refunds[refund_id] = refund
            return Refund(**vars(refund))

    def clear(self) -> None:
        with self._lock:
            self._refunds.clear()

    def find(self, lookup: Lookup) -> list[Refund]:
        """GetRefundStatus: by the refunded InvoiceId, the RefundReference or the RefundId."""
        attribute = {"InvoiceId": "invoice_id", "RefundReference": "reference", "RefundId": "id"}
        name = attribute[lookup.key_type]
        with self._lock:
            return [
                Refund(**vars(r))
                for r in self._refunds.values()
                if str(getattr(r, name)) == lookup.key
            ]

    def set_status(self, refund_id: int, status: str) -> Refund:
        """What MyFatoorah's finance team does later: Refunded or Canceled."""
        if status not in REFUND_STATUSES:
            raise ValueError(f"refund status must be one of {REFUND_STATUSES}")
        with self._lock:
            refund = self._refunds[refund_id]
            refund.status = status
            return Refund(**vars(refund))
