"""Per-account sliding-window limits through the whole system."""

from __future__ import annotations

import concurrent.futures
from collections import Counter

import httpx
from click.testing import CliRunner
from sqlalchemy import select

from resayil.cli import main
from schema.models import AuditEntry, User
from tests.stack import Stack

HELLO = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi [[sim:tokens=2]]"}]}


def post(url: str, key: str, body: object = HELLO) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def burst(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda i: post(urls[i % len(urls)], key), range(count)))


def test_basic_plan_admits_ten_per_minute(stack: Stack) -> None:
    account = stack.new_account(plan="basic", credits=100)
    responses = burst([stack.api_url], account.key, 15)
    assert Counter(r.status_code for r in responses) == {200: 10, 429: 5}
    for response in responses:
        assert response.headers["x-ratelimit-limit-requests"] == "10"
        assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    refused = [r for r in responses if r.status_code == 429]
    for response in refused:
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert response.json()["error"]["type"] == "requests"
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in responses)
    assert remaining[-10:] == list(range(10))
    # Refused requests cost nothing and reserved nothing.
    assert len(stack.wait_usage(account.account_id, 10)) == 10
    assert stack.balance(account.account_id) == 90 == stack.ledger_sum(account.account_id)


def test_headers_on_other_v1_responses(stack: Stack) -> None:
    account = stack.new_account(plan="pro", credits=0)
    payment = post(stack.api_url, account.key)
    assert payment.status_code == 402
    assert payment.headers["x-ratelimit-limit-requests"] == "30"
    assert payment.headers["x-ratelimit-remaining-requests"] == "29"
    models = httpx.get(
        f"{stack.api_url}/v1/models", headers={"Authorization": f"Bearer {account.key}"}
    )
    assert models.status_code == 200
    assert models.headers["x-ratelimit-remaining-requests"] == "29"  # listing does not count


def test_override_from_the_cli(stack: Stack) -> None:
    account = stack.new_account(plan="basic", credits=100)

    def set_limit(*rpm: str) -> None:
        runner = CliRunner(env={"DATABASE_URL": stack.database_url, "REDIS_URL": stack.redis_url})
        result = runner.invoke(main, ["accounts", "set-limit", "--email", account.email, *rpm])
        assert result.exit_code == 0, result.output

    set_limit("--rpm", "3")
    assert Counter(r.status_code for r in burst([stack.api_url], account.key, 5)) == {
        200: 3,
        429: 2,
    }
    set_limit("--rpm", "0")
    unlimited = burst([stack.api_url], account.key, 20)
    assert {r.status_code for r in unlimited} == {200}
    assert "x-ratelimit-limit-requests" not in unlimited[0].headers


def test_limit_holds_across_two_api_processes(stack: Stack) -> None:
    with stack.extra_api("second-api") as url:
        account = stack.new_account(plan="basic", credits=100)
        responses = burst([stack.api_url, url], account.key, 20)
        assert Counter(r.status_code for r in responses) == {200: 10, 429: 10}


def test_admin_api_overrides_a_limit(stack: Stack) -> None:
    admin = stack.new_account(plan="pro", credits=0)
    with stack.session() as session, session.begin():
        session.get_one(User, admin.user_id).is_admin = True
    customer = stack.new_account(plan="basic", credits=100)
    assert post(stack.api_url, customer.key).status_code == 200  # its key is now cached

    def put(key: str, account_id: int, rpm: int | None) -> httpx.Response:
        return httpx.put(
            f"{stack.api_url}/api/admin/accounts/{account_id}/rate-limit",
            json={"requests_per_minute": rpm},
            headers={"Authorization": f"Bearer {key}"},
        )

    refused = put(customer.key, customer.account_id, 0)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_required"
    assert put(admin.key, 999_999_999, 5).status_code == 404
    assert put(admin.key, customer.account_id, -1).status_code == 400
    done = put(admin.key, customer.account_id, 2)
    assert done.json() == {"account_id": customer.account_id, "requests_per_minute": 2}
    # Applies from the very next request, cache or not: one more fits in the window.
    assert [post(stack.api_url, customer.key).status_code for _ in range(2)] == [200, 429]
    assert put(admin.key, customer.account_id, None).status_code == 200
    assert post(stack.api_url, customer.key).headers["x-ratelimit-limit-requests"] == "10"
    with stack.session() as session:
        trail = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == "account", AuditEntry.target_id == customer.account_id)
            .order_by(AuditEntry.id)
        ).all()
    assert [(e.actor, e.action, e.details) for e in trail] == [
        (f"key:{admin.key_id}", "account.rate_limit_set", {"from": None, "to": 2}),
        (f"key:{admin.key_id}", "account.rate_limit_set", {"from": 2, "to": None}),
    ]
