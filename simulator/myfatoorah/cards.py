"""Test cards: the number typed on the payment page decides the transaction's outcome."""

from dataclasses import dataclass

# MyFatoorah's payment error codes and their English texts [doc /docs/get-payment-details].
ERROR_TEXTS: dict[str, str] = {
    "MF001": "3DS authentication failed, the cardholder did not complete the verification.",
    "MF002": "The issuer bank has declined the transaction.",
    "MF003": "The transaction has been blocked by the gateway.",
    "MF004": "Insufficient funds.",
    "MF005": "Session timeout.",
    "MF006": "The transaction has been cancelled.",
    "MF007": "The card is expired.",
    "MF008": "The card issuer did not respond.",
    "MF009": "Denied by risk.",
    "MF010": "Wrong security code (CVV).",
    "MF020": "Unspecified failure.",
}
DECLINED = "MF002"  # what an unknown card gets


@dataclass(frozen=True)
class CardOutcome:
    brand: str
    error_code: str | None = None  # None = the payment succeeds

    @property
    def succeeded(self) -> bool:
        return self.error_code is None

    @property
    def error(self) -> str | None:
        return None if self.error_code is None else ERROR_TEXTS[self.error_code]


def _failure_card(code: str) -> str:
    return f"40000000000000{int(code[2:]):02d}"  # MF007 -> 4000000000000007


TEST_CARDS: dict[str, CardOutcome] = {
    "5123450000000008": CardOutcome("Master Card"),
    "4508750015741019": CardOutcome("Visa"),
    **{_failure_card(code): CardOutcome("Visa", code) for code in ERROR_TEXTS},
}
SUCCESS_CARDS: tuple[str, ...] = tuple(n for n, o in TEST_CARDS.items() if o.succeeded)
FAILURE_CARDS: dict[str, str] = {  # error code -> card number
    outcome.error_code: number
    for number, outcome in TEST_CARDS.items()
    if outcome.error_code is not None
}


def normalize_card(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace() and ch != "-")


def card_outcome(number: str) -> CardOutcome:
    known = TEST_CARDS.get(number)
    if known is not None:
        return known
    brand = {"4": "Visa", "5": "Master Card", "3": "American Express"}.get(number[:1], "Unknown")
    return CardOutcome(brand, DECLINED)


def mask_card(number: str) -> str:
    """`5123450000000008` -> `512345xxxxxx0008`, as GetPaymentStatus shows it."""
    if len(number) < 10:
        return "x" * len(number)
    return number[:6] + "x" * (len(number) - 10) + number[-4:]
