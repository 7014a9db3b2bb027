"""Why a payment failed, in words a customer can act on (MyFatoorah's error codes)."""

from __future__ import annotations

from portal.translatable import N_

MESSAGES = {
    "MF001": N_("Your bank's 3-D Secure check failed. Try again or use another card."),
    "MF002": N_("Your bank declined the payment. Try another card or contact your bank."),
    "MF003": N_("The payment was blocked for your protection. Contact your bank."),
    "MF004": N_("Your card does not have enough funds for this payment."),
    "MF005": N_("The payment timed out before it finished. Please try again."),
    "MF006": N_("The payment was cancelled."),
    "MF007": N_("This card has expired. Use another card."),
    "MF008": N_("Your bank did not respond. Please try again in a few minutes."),
    "MF009": N_("The payment was refused by the risk checks. Try another card."),
    "MF010": N_("The card's security code (CVV) was wrong."),
    "MF020": N_("The payment did not go through. Please try again."),
    "gateway_error": N_("The payment service could not be reached. Nothing was charged."),
    "amount_mismatch": N_(
        "The amount paid does not match the order. Our team will contact you; "
        "nothing more will be charged."
    ),
    "currency_mismatch": N_("The payment was made in another currency. Our team will contact you."),
    "reference_mismatch": N_("The payment does not match this order. Our team will contact you."),
    "amount_unreadable": N_("We could not read the amount paid. Our team will contact you."),
}
DEFAULT = MESSAGES["MF020"]


def failure_message(code: str | None) -> str:
    """The English message (translated by the page) for a failure code."""
    return MESSAGES.get(code or "", DEFAULT)
