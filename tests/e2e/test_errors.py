"""Every error, end to end, in OpenAI's shape `{"error": {message, type, param, code}}`.

Checked twice where it matters: through the official `openai` client (the exception
class a user's code sees) and raw with httpx (status, headers and body bytes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from sqlalchemy import select

from schema.models import CreditEntry
from tests.e2e.helpers import unlimit
from tests.stack import Stack

ClientFor = Callable[..., openai.OpenAI]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
ERROR_KEYS = {"message", "type", "param", "code"}
HIDDEN = ("glm-4.7-flash", "bge-m3", "nomic-embed-text")
PRO_ONLY = ("qwen3-30b-40k", "Qwen3-VL-32B", "qwen3.5:cloud", "deepseek-v3.2:cloud", "gpt-oss:20b")
LOCAL = "llama3.2:3b"


# -- helpers -------------------------------------------------------------------------


def post_chat(
    stack: Stack,
    key: str | None,
    body: Any = None,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.post(
        f"{stack.api_url}/v1/chat/completions",
        json=body if content is None else None,
        content=content,
        headers=sent | (headers or {}),
        timeout=30,
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The `error` object of an OpenAI-shaped error response (all four keys present)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) >= ERROR_KEYS, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert isinstance(error["code"], str) and error["code"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    return error


def ledger_rows(stack: Stack, account_id: int) -> list[tuple[str, int]]:
    with stack.session() as session:
        rows = session.execute(
            select(CreditEntry.kind, CreditEntry.amount)
            .where(CreditEntry.account_id == account_id)
            .order_by(CreditEntry.id)
        )
        return [(kind, amount) for kind, amount in rows]


def say(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


# -- 401 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["no-header", "basic-scheme", "empty-bearer"],
)
def test_missing_key_is_401(stack: Stack, headers: dict[str, str]) -> None:
    response = post_chat(stack, None, {"model": LOCAL, "messages": HELLO}, headers=headers)
    assert response.status_code == 401
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_api_key",
        None,
    )
    listed = httpx.get(f"{stack.api_url}/v1/models", headers=headers, timeout=10)
    assert listed.status_code == 401 and error_of(listed)["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    "key",
    ["not-a-key", "rsy-' OR '1'='1", "rsy-" + "A" * 43, "x" * 5000],
    ids=["malformed", "sql-ish", "well-formed-unknown", "huge"],
)
def test_bad_key_raises_authentication_error(stack: Stack, client_for: ClientFor, key: str) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(key).chat.completions.create(model=LOCAL, messages=HELLO)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert isinstance(caught.value.body, dict) and set(caught.value.body) >= ERROR_KEYS
    with pytest.raises(openai.AuthenticationError):
        client_for(key).models.list()


# -- 402 -----------------------------------------------------------------------------


def test_insufficient_credits_is_402_and_reserves_nothing(
    stack: Stack, client_for: ClientFor
) -> None:
    account = stack.new_account(plan="pro", credits=1)
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(account.key).chat.completions.create(model="qwen3.5:cloud", messages=HELLO)
    # There is no 402 class in the SDK: a plain APIStatusError is what users catch.
    assert type(caught.value) is openai.APIStatusError
    assert caught.value.status_code == 402
    assert caught.value.code == "insufficient_credits"

    response = post_chat(stack, account.key, {"model": "qwen3.5:cloud", "messages": HELLO})
    assert response.status_code == 402
    error = error_of(response)
    assert error["type"] == "insufficient_quota"
    assert (error["balance"], error["price"]) == (1, 2)
    assert error["topup_url"] == f"{stack.api_url}/billing"
    assert error["topup_url"] in error["message"]

    assert stack.balance(account.account_id) == 1 == stack.ledger_sum(account.account_id)
    assert ledger_rows(stack, account.account_id) == [("grant", 1)]
    assert stack.usage(account.account_id) == []


def test_zero_balance_local_request_is_402(stack: Stack) -> None:
    account = stack.new_account(plan="basic", credits=0)
    response = post_chat(stack, account.key, {"model": LOCAL, "messages": HELLO, "stream": True})
    assert response.status_code == 402
    error = error_of(response)
    assert (error["code"], error["balance"], error["price"]) == ("insufficient_credits", 0, 1)
    assert ledger_rows(stack, account.account_id) == []


def test_account_without_plan_is_402_subscription_expired(
    stack: Stack, client_for: ClientFor
) -> None:
    account = stack.new_account(plan=None, credits=10)
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(account.key).chat.completions.create(model=LOCAL, messages=HELLO)
    assert caught.value.status_code == 402
    assert caught.value.code == "subscription_expired"
    response = post_chat(stack, account.key, {"model": LOCAL, "messages": HELLO})
    assert response.status_code == 402
    assert error_of(response)["code"] == "subscription_expired"
    assert stack.balance(account.account_id) == 10
    assert ledger_rows(stack, account.account_id) == [("grant", 10)]


# -- 403 / 404 -----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["qwen3.5:cloud", "Qwen3-VL-32B"])
def test_model_outside_plan_is_403_naming_the_plan(
    stack: Stack, client_for: ClientFor, model: str
) -> None:
    account = stack.new_account(plan="basic", credits=10)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client_for(account.key).chat.completions.create(model=model, messages=HELLO)
    assert caught.value.status_code == 403
    assert caught.value.code == "model_not_in_plan"
    assert caught.value.param == "model"
    body = caught.value.body
    assert isinstance(body, dict) and set(body) >= ERROR_KEYS
    assert "Pro plan" in body["message"] and model in body["message"]
    assert stack.balance(account.account_id) == 10
    assert ledger_rows(stack, account.account_id) == [("grant", 10)]


def test_unknown_model_is_404(stack: Stack, client_for: ClientFor) -> None:
    account = stack.new_account(plan="enterprise", credits=10)
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(account.key).chat.completions.create(model="gpt-9-turbo", messages=HELLO)
    assert (caught.value.status_code, caught.value.code) == (404, "model_not_found")
    assert caught.value.type == "invalid_request_error"
    assert stack.balance(account.account_id) == 10


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_hidden_model_answers_exactly_like_an_unknown_one(
    stack: Stack, client_for: ClientFor, hidden: str, stream: bool
) -> None:
    account = stack.new_account(plan="enterprise", credits=10)
    unknown = "no-such-model:7b"
    answers = {
        name: post_chat(stack, account.key, {"model": name, "messages": HELLO, "stream": stream})
        for name in (hidden, unknown)
    }
    seen, missing = answers[hidden], answers[unknown]
    assert seen.status_code == missing.status_code == 404
    assert error_of(seen)["code"] == "model_not_found"
    assert sorted(seen.headers.keys()) == sorted(missing.headers.keys())
    assert seen.content.replace(hidden.encode(), b"<m>") == missing.content.replace(
        unknown.encode(), b"<m>"
    )
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(account.key).chat.completions.create(model=hidden, messages=HELLO)
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
    assert stack.balance(account.account_id) == 10
    assert stack.usage(account.account_id) == []


def test_hidden_models_are_mentioned_nowhere_else(stack: Stack) -> None:
    texts: list[str] = []
    for plan in ("basic", "pro", "enterprise"):
        key = stack.new_account(plan=plan, credits=10).key
        auth = {"Authorization": f"Bearer {key}"}
        texts.append(httpx.get(f"{stack.api_url}/v1/models", headers=auth, timeout=10).text)
        texts.append(httpx.get(f"{stack.api_url}/v1/models/gpt-9", headers=auth, timeout=10).text)
        texts.append(post_chat(stack, key, {"model": "gpt-9", "messages": HELLO}).text)
        texts.append(post_chat(stack, key, {"model": LOCAL, "messages": []}).text)
    basic = stack.new_account(plan="basic", credits=0).key
    texts += [post_chat(stack, basic, {"model": m, "messages": HELLO}).text for m in PRO_ONLY]
    texts.append(post_chat(stack, basic, {"model": LOCAL, "messages": HELLO}).text)  # 402
    texts.append(httpx.get(f"{stack.api_url}/openapi.json", timeout=10).text)
    texts.append(httpx.get(f"{stack.api_url}/", timeout=10).text)
    texts.append(post_chat(stack, "rsy-unknown", {"model": "bge-m3"}).text)
    assert len(texts) == 12 + len(PRO_ONLY) + 4
    assert all(texts)
    for text in texts:
        for hidden in HIDDEN:
            assert hidden.lower() not in text.lower(), text[:300]


# -- 400 -----------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, Any, str | None, str]] = [
    ("missing-messages", {"model": LOCAL}, "messages", "invalid_request_error"),
    ("empty-messages", {"model": LOCAL, "messages": []}, "messages", "invalid_request_error"),
    (
        "bad-role",
        {"model": LOCAL, "messages": [{"role": "wizard", "content": "hi"}]},
        "messages[0].role",
        "invalid_request_error",
    ),
    (
        "temperature-5",
        {"model": LOCAL, "messages": HELLO, "temperature": 5},
        "temperature",
        "invalid_request_error",
    ),
    (
        "http-image-url",
        {
            "model": LOCAL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "http://example.com/a.png"}},
                    ],
                }
            ],
        },
        "messages[0].content[1].image_url",
        "unsupported_input",
    ),
    (
        "tool-without-call-id",
        {
            "model": LOCAL,
            "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "sunny"}],
        },
        "messages[1]",
        "invalid_request_error",
    ),
    (
        "content-part-without-image",
        {"model": LOCAL, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        "messages[0].content",
        "invalid_request_error",
    ),
    (
        "stop-not-text",
        {"model": LOCAL, "messages": HELLO, "stop": {"a": 1}},
        "stop",
        "invalid_request_error",
    ),
    ("n-2", {"model": LOCAL, "messages": HELLO, "n": 2}, "n", "invalid_request_error"),
    ("model-not-text", {"model": 7, "messages": HELLO}, "model", "invalid_request_error"),
    ("body-is-a-list", [{"model": LOCAL}], None, "invalid_request_error"),
]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_body_is_400_naming_the_param(
    stack: Stack, body: Any, param: str | None, code: str
) -> None:
    account = stack.new_account(plan="basic", credits=5)
    response = post_chat(stack, account.key, body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert "None" not in error["message"]
    if param is not None:
        assert param in error["message"] or code == "unsupported_input"
    assert stack.balance(account.account_id) == 5
    assert ledger_rows(stack, account.account_id) == [("grant", 5)]


def test_invalid_json_is_400(stack: Stack) -> None:
    key = stack.new_account(plan="basic", credits=5).key
    response = post_chat(
        stack, key, content=b'{"model": "llama3.2:3b", "messages": [', headers=JSON_TYPE
    )
    assert response.status_code == 400
    error = error_of(response)
    assert (error["param"], error["code"]) == (None, "invalid_request_error")
    assert "JSON" in error["message"]


def test_bad_request_through_the_client(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(plan="basic", credits=5).key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=LOCAL, messages=HELLO, temperature=5)
    assert (caught.value.status_code, caught.value.param) == (400, "temperature")
    assert caught.value.code == "invalid_request_error"


# -- upstream failures ---------------------------------------------------------------

UPSTREAM_FAILURES = [
    ("503", 503, "upstream_busy", openai.InternalServerError),
    ("404", 404, "model_not_found", openai.NotFoundError),
    ("500", 502, "upstream_error", openai.InternalServerError),
]


@pytest.mark.parametrize(("directive", "status", "code", "raised"), UPSTREAM_FAILURES)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_upstream_failure_before_output_is_mapped_and_refunded(
    stack: Stack,
    client_for: ClientFor,
    directive: str,
    status: int,
    code: str,
    raised: type[openai.APIStatusError],
    stream: bool,
) -> None:
    account = stack.new_account(plan="pro", credits=10)
    messages = say(f"hi [[sim:error={directive}]]")
    response = post_chat(
        stack, account.key, {"model": LOCAL, "messages": messages, "stream": stream}
    )
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code
    assert response.headers["x-resayil-served-by"] == "local"
    if status == 503:
        assert int(response.headers["retry-after"]) >= 1
    else:
        assert "retry-after" not in response.headers
    if code == "model_not_found":
        assert LOCAL in error["message"]

    with pytest.raises(raised) as caught:
        client_for(account.key).chat.completions.create(
            model=LOCAL, messages=messages, stream=stream
        )
    assert (caught.value.status_code, caught.value.code) == (status, code)

    rows = stack.wait_usage(account.account_id, 2)
    assert [(r.status, r.error_code, r.credits_charged) for r in rows] == [("error", code, 0)] * 2
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)
    assert sorted(ledger_rows(stack, account.account_id)) == sorted(
        [("grant", 10)] + [("reserve", -1), ("refund", 1)] * 2
    )


def sse_events(response: httpx.Response) -> list[str]:
    return [
        line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data:")
    ]


@pytest.mark.parametrize(
    ("directive", "code"), [("midstream", "upstream_error"), ("truncate", "upstream_truncated")]
)
def test_failure_after_output_is_an_sse_error_event(
    stack: Stack, client_for: ClientFor, directive: str, code: str
) -> None:
    account = stack.new_account(plan="pro", credits=10)
    messages = say(f"hi [[sim:error={directive}]]")
    received: list[str] = []
    stream = client_for(account.key).chat.completions.create(
        model=LOCAL, messages=messages, stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            assert isinstance(chunk, ChatCompletionChunk)
            received.append(chunk.choices[0].delta.content or "")
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.code == code
    assert isinstance(caught.value.body, dict) and set(caught.value.body) >= ERROR_KEYS
    assert "".join(received).split()[:2] == ["tok0", "tok1"]

    response = post_chat(stack, account.key, {"model": LOCAL, "messages": messages, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response)
    assert "[DONE]" not in events
    assert "event:" not in response.text
    last = json.loads(events[-1])
    assert set(last) == {"error"} and set(last["error"]) >= ERROR_KEYS
    assert last["error"]["code"] == code
    first = json.loads(events[0])
    assert first["choices"][0]["delta"]["role"] == "assistant"

    rows = stack.wait_usage(account.account_id, 2)
    assert [(r.status, r.error_code) for r in rows] == [("error", code)] * 2
    charged = sum(r.credits_charged for r in rows)
    assert stack.balance(account.account_id) == 10 - charged == stack.ledger_sum(account.account_id)


def test_truncated_non_stream_is_502(stack: Stack, client_for: ClientFor) -> None:
    account = stack.new_account(plan="pro", credits=10)
    with pytest.raises(openai.InternalServerError) as caught:
        client_for(account.key).chat.completions.create(
            model=LOCAL, messages=say("hi [[sim:error=truncate]]")
        )
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_truncated")
    rows = stack.wait_usage(account.account_id, 1)
    assert [(r.status, r.error_code, r.credits_charged) for r in rows] == [
        ("error", "upstream_truncated", 0)
    ]
    assert stack.balance(account.account_id) == 10 == stack.ledger_sum(account.account_id)


# -- fuzz ----------------------------------------------------------------------------

JSON_TYPE = {"content-type": "application/json"}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "multipart/form-data; boundary=xyz",
    "",
]
TYPED_FIELDS = ("temperature", "top_p", "max_tokens", "n", "seed", "messages", "tools", "stop")

CURATED: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"null", "application/json"),
    (b'"a string"', "application/json"),
    (b"12", "application/json"),
    (b"[" * 5000 + b"]" * 5000, "application/json"),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, "application/json"),
    (b"\xff\xfe\x00garbage\x80", "application/json"),
    (b'{"model": "llama3.2:3b", "messages": [{"role":"user","content":"hi"}]', "application/json"),
    (b'{"model":"llama3.2:3b","messages":[{"role":"user"}]}', "application/json"),
    (b'{"model":"llama3.2:3b","messages":"hi","temperature":NaN}', "application/json"),
    (b"model=llama3.2:3b&messages=hi", "application/x-www-form-urlencoded"),
    (b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nx\r\n--xyz--\r\n', ""),
    (b'{"model":"llama3.2:3b","messages":[{"role":"tool","content":"x"}]}', "application/json"),
    (b'{"model":"llama3.2:3b","messages":[null]}', "application/json"),
]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["int", "float", "str", "bool", "null"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.choice([0, -1, 2**63, -(2**70), rng.randint(-1000, 1000)])
    if kind == "float":
        return rng.choice([1e308, -0.0, 3.5, rng.random()])
    if kind == "str":
        return "".join(rng.choice("ab\u0000\u202e\ud7ff\u0645 {}[]\"'\\") for _ in range(8))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}


def random_invalid_body(rng: random.Random) -> tuple[bytes, str]:
    """A body that can never be a valid request, in one of several ways."""
    match rng.randrange(5):
        case 0:  # not an object at all
            value = rng.choice([[random_value(rng)], "text", 3, None, True])
            return json.dumps(value).encode(), rng.choice(CONTENT_TYPES)
        case 1:  # an object without the required fields
            junk = {f"x{i}": random_value(rng) for i in range(rng.randint(0, 5))}
            return json.dumps(junk).encode(), "application/json"
        case 2:  # a typed field given a container of junk (never a number, list of text...)
            field = rng.choice(TYPED_FIELDS)
            wrong: Any = rng.choice([{"z": random_value(rng)}, [{"z": 1}, None, 7, {}]])
            body = {"model": LOCAL, "messages": HELLO, field: wrong}
            return json.dumps(body).encode(), "application/json"
        case 3:  # a model that is not a string
            model = rng.choice([1, 2.5, [LOCAL], {"name": LOCAL}, None, True])
            return json.dumps({"model": model, "messages": HELLO}).encode(), "application/json"
        case _:  # random bytes
            raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
            return b"{" + raw, rng.choice(CONTENT_TYPES)


def test_fuzzed_bodies_never_cause_a_500(stack: Stack) -> None:
    account = unlimit(stack, stack.new_account(plan="enterprise", credits=20))
    rng = random.Random(20240607)  # fixed seed: a failure reproduces
    cases = CURATED + [random_invalid_body(rng) for _ in range(40)]
    statuses: list[int] = []
    with httpx.Client(timeout=30) as http:
        for content, content_type in cases:
            headers = {"Authorization": f"Bearer {account.key}"}
            if content_type:
                headers["content-type"] = content_type
            response = http.post(
                f"{stack.api_url}/v1/chat/completions", content=content, headers=headers
            )
            assert 400 <= response.status_code < 500, (content[:200], response.text[:300])
            error_of(response)
            statuses.append(response.status_code)
    assert len(statuses) == len(cases) >= 50
    assert set(statuses) == {400}
    assert stack.balance(account.account_id) == 20
    assert ledger_rows(stack, account.account_id) == [("grant", 20)]
    assert stack.usage(account.account_id) == []
