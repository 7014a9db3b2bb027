"""The hosted payment page a browser sees: plain HTML with stable ids for Playwright."""

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from simulator.myfatoorah.cards import TEST_CARDS
from simulator.myfatoorah.models import Invoice
from simulator.myfatoorah.payments import PaymentRefused, with_payment_id
from simulator.myfatoorah.state import MyFatoorahState, utc_now
from simulator.myfatoorah.views import CURRENCY_TEXT
from simulator.myfatoorah.wire import money_text


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} - MyFatoorah test double</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _cards_table() -> str:
    rows = "".join(
        f'<tr><td class="card">{number}</td><td>{escape(o.brand)}</td>'
        f"<td>{escape(o.error_code or 'success')}</td><td>{escape(o.error or '')}</td></tr>"
        for number, o in TEST_CARDS.items()
    )
    head = "<tr><th>Card number</th><th>Brand</th><th>Outcome</th><th>Error</th></tr>"
    return f'<h2>Test cards</h2><table id="test_cards">{head}{rows}</table>'


def _summary(invoice: Invoice) -> str:
    reference = escape(invoice.request.customer_reference or "")
    return (
        f'<p>Invoice <span id="invoice_id">{invoice.id}</span></p>'
        f'<p>Amount: <strong id="amount">{money_text(invoice.value)} {CURRENCY_TEXT}</strong></p>'
        f'<p>Customer reference: <span id="customer_reference">{reference}</span></p>'
    )


def _paid_page(invoice: Invoice) -> HTMLResponse:
    paid = next(t for t in invoice.transactions if t.succeeded)
    back = with_payment_id(invoice.request.callback_url or f"{invoice.url}/result", paid.payment_id)
    body = (
        f'{_summary(invoice)}<p id="already_paid">This invoice is already paid.</p>'
        f'<p><a id="back" href="{escape(back)}">Back to the merchant</a></p>'
    )
    return _page("Already paid", body)


def _refused(error: PaymentRefused, invoice: Invoice | None) -> Response:
    if error.code == "already_paid" and invoice is not None and invoice.paid:
        response = _paid_page(invoice)
        response.status_code = error.status
        return response
    return _page("Payment refused", f'<p id="error">{escape(error.message)}</p>', error.status)


class PaymentPage:
    def __init__(self, state: MyFatoorahState) -> None:
        self.state = state

    def _invoice(self, request: Request) -> tuple[int, Invoice | None]:
        raw = str(request.path_params["invoice_id"])
        invoice_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else -1
        return invoice_id, self.state.invoice(invoice_id)

    async def show(self, request: Request) -> Response:
        _, invoice = self._invoice(request)
        if invoice is None:
            return _page("Invoice not found", '<p id="error">No such invoice.</p>', 404)
        if invoice.paid:
            return _paid_page(invoice)
        if invoice.expired(utc_now()):
            return _page("Invoice expired", f'{_summary(invoice)}<p id="expired">Expired.</p>')
        form = (
            '<form method="post"><label for="card_number">Card number</label> '
            '<input name="card_number" id="card_number" autocomplete="off" inputmode="numeric"> '
            '<button type="submit" id="pay">Pay</button></form>'
        )
        return _page("Pay", _summary(invoice) + form + _cards_table())

    async def submit(self, request: Request) -> Response:
        invoice_id, _ = self._invoice(request)
        try:
            card = (await request.form()).get("card_number")
        except Exception:  # a broken form body is a form without a card number
            card = None
        try:
            outcome = self.state.pay(invoice_id, card if isinstance(card, str) else "")
        except PaymentRefused as error:
            return _refused(error, self.state.invoice(invoice_id))
        return RedirectResponse(outcome.redirect_url, status_code=303)

    async def result(self, request: Request) -> Response:
        """MyFatoorah's own result page, for invoices made without a CallBackUrl."""
        _, invoice = self._invoice(request)
        payment_id = request.query_params.get("paymentId", "")
        found = [t for t in (invoice.transactions if invoice else []) if t.payment_id == payment_id]
        if invoice is None or not found:
            return _page("Payment not found", '<p id="error">No such payment.</p>', 404)
        status = "succeeded" if found[0].succeeded else f"failed ({found[0].error_code})"
        return _page("Payment result", f'{_summary(invoice)}<p id="result">Payment {status}.</p>')
