"""The payment methods InitiatePayment offers (Kuwait test account, KWD)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simulator.myfatoorah.wire import money

IMAGE_BASE = "https://demo.myfatoorah.com/imgs/payment-methods"


@dataclass(frozen=True)
class PaymentMethod:
    id: int
    code: str
    name_en: str
    name_ar: str
    gateway: str  # `PaymentGateway` of a transaction paid with it
    is_direct: bool = False

    def entry(self, amount: Decimal, currency: str) -> dict[str, Any]:
        return {
            "PaymentMethodId": self.id,
            "PaymentMethodAr": self.name_ar,
            "PaymentMethodEn": self.name_en,
            "PaymentMethodCode": self.code,
            "IsDirectPayment": self.is_direct,
            "ServiceCharge": money(Decimal(0)),
            "TotalAmount": money(amount),
            "CurrencyIso": currency,
            "ImageUrl": f"{IMAGE_BASE}/{self.code}.png",
            "IsEmbeddedSupported": self.code in {"vm", "ap", "gp"},
            "PaymentCurrencyIso": currency,
        }


PAYMENT_METHODS: tuple[PaymentMethod, ...] = (
    PaymentMethod(1, "kn", "KNET", "كي نت", "KNET"),
    PaymentMethod(2, "vm", "VISA/MASTER", "فيزا / ماستر", "VISA/MASTER"),
    PaymentMethod(3, "ae", "AMEX", "اميكس", "AMEX"),
    PaymentMethod(11, "ap", "Apple Pay", "أبل الدفع", "APPLE PAY"),
    PaymentMethod(32, "gp", "Google Pay", "جوجل الدفع", "GOOGLE PAY"),
)
BY_ID: dict[int, PaymentMethod] = {method.id: method for method in PAYMENT_METHODS}
CARD_GATEWAY = "VISA/MASTER"  # an invoice paid without a chosen method (SendPayment, SessionId)
