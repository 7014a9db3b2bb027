"""Admission's credit reservation, as the API answers it: the shapes of 402 and 503."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine

from portal.catalog.service import ModelInfo
from portal.chat.service import Admissible, new_job, reserve_credits
from portal.config import PortalSettings
from portal.exceptions import PaymentRequired, ServiceUnavailable
from portal.keys.service import Caller
from schema.db import make_session_factory
from schema.openai import ChatCompletionRequest
from schema.reservations import reservations_for
from tests.databases import Sessions
from tests.schema.test_ledger import balance, new_account

LOCAL = ModelInfo("llama3.2:3b", "local", "llama3.2:3b", None, "resayil", 0)
REQUEST = ChatCompletionRequest.model_validate(
    {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]}
)


def caller(account_id: int) -> Caller:
    return Caller(account_id, 1, "basic", 1, False, 0)


async def test_no_credits_is_402_with_balance_price_and_top_up(sessions: Sessions) -> None:
    account_id = new_account(sessions, 1)
    reservations = reservations_for(sessions)
    await reservations.open()
    settings = PortalSettings()
    try:
        with pytest.raises(PaymentRequired) as refused:
            await reserve_credits(
                reservations=reservations,
                settings=settings,
                job=new_job(
                    caller=caller(account_id),
                    request=REQUEST,
                    admissible=Admissible(LOCAL, 2),
                    reply_to="rs:replies:test",
                ),
            )
    finally:
        await reservations.close()
    assert refused.value.extra == {"balance": 1, "price": 2, "topup_url": settings.topup_url}
    assert balance(sessions, account_id) == 1


async def test_an_unreachable_database_is_503_and_charges_nothing() -> None:
    engine = create_engine(f"sqlite:////nonexistent-{uuid.uuid4().hex}/resayil.db")
    reservations = reservations_for(make_session_factory(engine))
    with pytest.raises(ServiceUnavailable) as unavailable:
        await reserve_credits(
            reservations=reservations,
            settings=PortalSettings(),
            job=new_job(
                caller=caller(1),
                request=REQUEST,
                admissible=Admissible(LOCAL, 1),
                reply_to="rs:replies:test",
            ),
        )
    assert unavailable.value.code == "database_unavailable"
    assert unavailable.value.status == 503 and unavailable.value.headers == {"retry-after": "5"}
