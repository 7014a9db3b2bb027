"""A faithful test double of MyFatoorah's v2 API, payment page and webhooks.

Public surface: `MyFatoorahDouble` (harness), `MyFatoorahConfig`, `MyFatoorahState`,
`TEST_CARDS` / `SUCCESS_CARDS` / `FAILURE_CARDS`, `Delivery`, `PaymentOutcome`,
and `WebhookReceiver`, a merchant endpoint that records what it receives.
"""

from simulator.myfatoorah.cards import FAILURE_CARDS, SUCCESS_CARDS, TEST_CARDS, CardOutcome
from simulator.myfatoorah.config import MyFatoorahConfig, load_config
from simulator.myfatoorah.harness import MyFatoorahDouble
from simulator.myfatoorah.payments import PaymentOutcome, PaymentRefused
from simulator.myfatoorah.receiver import ReceivedWebhook, WebhookReceiver
from simulator.myfatoorah.state import MyFatoorahState
from simulator.myfatoorah.webhooks import Delivery

__all__ = [
    "FAILURE_CARDS",
    "SUCCESS_CARDS",
    "TEST_CARDS",
    "CardOutcome",
    "Delivery",
    "MyFatoorahConfig",
    "MyFatoorahDouble",
    "MyFatoorahState",
    "PaymentOutcome",
    "PaymentRefused",
    "ReceivedWebhook",
    "WebhookReceiver",
    "load_config",
]
