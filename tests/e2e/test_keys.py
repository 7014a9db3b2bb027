"""API keys end to end: random, stored only as digest + prefix, dead on the very next request."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import httpx
import openai
import pytest
from click.testing import CliRunner
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from portal.exceptions import NotFound
from portal.keys.service import delete_key
from resayil.cli import main
from schema.models import Account, ApiKey, AuditEntry, Plan
from tests.stack import Stack

ClientFor = Callable[..., openai.OpenAI]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def test_deleted_key_fails_on_the_very_next_request(stack: Stack, client_for: ClientFor) -> None:
    account = stack.new_account(credits=10)
    client = client_for(account.key)
    assert client.chat.completions.create(model="llama3.2:3b", messages=HELLO).choices
    with stack.session() as session, session.begin():
        delete_key(
            session,
            account_id=account.account_id,
            key_id=account.key_id,
            revoke=stack.revoke_key,
            actor="test",
        )
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="llama3.2:3b", messages=HELLO)
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    with stack.session() as session, session.begin(), pytest.raises(NotFound):
        delete_key(
            session,
            account_id=account.account_id,
            key_id=account.key_id,
            revoke=stack.revoke_key,
            actor="test",
        )
    assert len(stack.wait_usage(account.account_id, 1)) == 1
    assert stack.balance(account.account_id) == 9


def test_a_plan_change_applies_to_the_next_chat_request_of_a_remembered_key(
    stack: Stack, client_for: ClientFor
) -> None:
    # The api judges a key it has seen on the entry it last read, checked in Redis at
    # admission; a refusal judged on that copy is judged again on the current entry.
    account = stack.new_account(plan="basic", credits=10)
    client = client_for(account.key)
    assert client.chat.completions.create(model="llama3.2:3b", messages=HELLO).choices
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-oss:20b", messages=HELLO)
    with stack.session() as session, session.begin():
        pro = session.scalars(select(Plan).where(Plan.code == "pro")).one()
        session.get_one(Account, account.account_id).plan_id = pro.id
    stack.revoke_account(account.account_id)
    completion = client.chat.completions.create(model="gpt-oss:20b", messages=HELLO)
    assert completion.model == "gpt-oss:20b"
    with stack.session() as session, session.begin():
        session.get_one(Account, account.account_id).plan_id = None
    stack.revoke_account(account.account_id)
    with pytest.raises(openai.APIStatusError) as caught:  # no plan any more: nothing served
        client.chat.completions.create(model="llama3.2:3b", messages=HELLO)
    assert caught.value.status_code == 402
    assert stack.balance(account.account_id) == 8


def test_keys_are_stored_only_as_digest_and_prefix(stack: Stack) -> None:
    accounts = [stack.new_account() for _ in range(3)]
    with stack.session() as session:
        rows = session.execute(select(ApiKey)).scalars().all()
        stored = [[getattr(row, column.key) for column in ApiKey.__table__.columns] for row in rows]
        mine = {row.id: row for row in rows}
    assert len(stored) >= 3
    for account in accounts:
        for values in stored:
            assert not any(account.key in str(value) for value in values)
            assert not any(account.key[4:16] in str(value) for value in values if value)
        row = mine[account.key_id]
        assert row.prefix == account.key[:12]
        assert row.digest == hashlib.sha256(account.key.encode()).hexdigest()


def test_key_format_and_entropy(stack: Stack) -> None:
    keys = [stack.new_account().key for _ in range(3)]
    for key in keys:
        assert key.startswith("rsy-")
        secret = key[len("rsy-") :]
        assert URLSAFE.fullmatch(secret), key
        assert len(secret) * 6 >= 256  # base64url: 6 bits a character
    assert len(set(keys)) == len(keys)
    assert len({key[:12] for key in keys}) == len(keys)


def test_deleting_another_accounts_key_is_not_found(stack: Stack, client_for: ClientFor) -> None:
    owner, intruder = stack.new_account(credits=10), stack.new_account(credits=10)
    with stack.session() as session, session.begin(), pytest.raises(NotFound) as caught:
        delete_key(
            session,
            account_id=intruder.account_id,
            key_id=owner.key_id,
            revoke=stack.revoke_key,
            actor="test",
        )
    assert caught.value.code == "key_not_found"
    with stack.session() as session:
        assert session.get_one(ApiKey, owner.key_id).deleted_at is None
    completion = client_for(owner.key).chat.completions.create(model="llama3.2:3b", messages=HELLO)
    assert completion.choices[0].finish_reason == "stop"
    assert client_for(intruder.key).models.list().data


def test_cli_delete_ends_a_cached_key_on_its_next_request(stack: Stack) -> None:
    account = stack.new_account(credits=10)
    headers = {"Authorization": f"Bearer {account.key}"}
    for _ in range(3):  # resolved once, then served from the auth cache
        assert httpx.get(f"{stack.api_url}/v1/models", headers=headers).status_code == 200
    result = CliRunner(
        env={"DATABASE_URL": stack.database_url, "REDIS_URL": stack.redis_url}
    ).invoke(main, ["keys", "delete", "--email", account.email, "--id", str(account.key_id)])
    assert result.exit_code == 0, result.output
    refused = httpx.get(f"{stack.api_url}/v1/models", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    with stack.session() as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.target_type == "api_key", AuditEntry.target_id == account.key_id
            )
        ).one()
    assert (entry.actor, entry.action) == ("cli", "api_key.deleted")
