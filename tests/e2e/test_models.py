"""GET /v1/models and /v1/models/{id}: exactly the caller's plan, read live from the database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import delete, select

from schema.models import Plan, PlanModel
from tests.stack import Stack

ClientFor = Callable[..., openai.OpenAI]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
HIDDEN = ("glm-4.7-flash", "bge-m3", "nomic-embed-text")

# The seed lists of DESIGN.md, written out independently of schema/seed.json.
BASIC = ["llama3.2:3b", "smollm2:135m", "qwen2.5-coder:14b", "mistral-small3.2:24b"]
PRO = [
    *BASIC,
    "qwen3-30b-40k",
    "Qwen3-VL-32B",
    "qwen3.5:cloud",
    "deepseek-v3.2:cloud",
    "gpt-oss:20b",
]
PLAN_MODELS = {"basic": BASIC, "pro": PRO, "enterprise": PRO}
SEED = Path(__file__).parents[2] / "schema" / "seed.json"


def test_seed_file_matches_the_design() -> None:
    seed = json.loads(SEED.read_text())
    assert {p["code"]: sorted(p["models"]) for p in seed["plans"]} == {
        code: sorted(models) for code, models in PLAN_MODELS.items()
    }
    assert sorted(m["name"] for m in seed["models"] if m.get("hidden")) == sorted(HIDDEN)


@pytest.mark.parametrize("plan", ["basic", "pro", "enterprise"])
def test_list_is_exactly_the_plan(stack: Stack, client_for: ClientFor, plan: str) -> None:
    client = client_for(stack.new_account(plan=plan).key)
    ids = [model.id for model in client.models.list()]
    assert sorted(ids) == sorted(PLAN_MODELS[plan])
    assert len(ids) == len(set(ids))
    assert not set(ids) & set(HIDDEN)


def test_list_and_model_shape(stack: Stack) -> None:
    key = stack.new_account(plan="pro").key
    auth = {"Authorization": f"Bearer {key}"}
    response = httpx.get(f"{stack.api_url}/v1/models", headers=auth, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["object"] == "list"
    assert len(body["data"]) == len(PRO)
    for model in body["data"]:
        assert {"id", "object", "created", "owned_by"} <= set(model)
        assert model["object"] == "model"
        assert isinstance(model["created"], int) and model["created"] >= 0
        assert isinstance(model["owned_by"], str) and model["owned_by"]
    one = httpx.get(f"{stack.api_url}/v1/models/qwen3.5:cloud", headers=auth, timeout=10)
    assert one.status_code == 200
    assert one.json() == next(m for m in body["data"] if m["id"] == "qwen3.5:cloud")


def test_retrieve_a_plan_model(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(plan="basic").key)
    model = client.models.retrieve("llama3.2:3b")
    assert (model.id, model.object) == ("llama3.2:3b", "model")
    assert model.owned_by and isinstance(model.created, int)
    listed = {m.id: m for m in client.models.list()}
    assert listed["llama3.2:3b"] == model


@pytest.mark.parametrize(
    ("plan", "model"),
    [
        ("basic", "qwen3.5:cloud"),
        ("basic", "gpt-oss:20b"),
        ("enterprise", "glm-4.7-flash"),
        ("enterprise", "bge-m3"),
        ("pro", "nomic-embed-text"),
        ("pro", "no-such-model"),
    ],
)
def test_retrieve_outside_the_plan_is_not_found(
    stack: Stack, client_for: ClientFor, plan: str, model: str
) -> None:
    client = client_for(stack.new_account(plan=plan).key)
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve(model)
    assert (caught.value.status_code, caught.value.code) == (404, "model_not_found")
    assert caught.value.body == {
        "message": f"The model `{model}` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_account_without_plan_lists_nothing(stack: Stack, client_for: ClientFor) -> None:
    client = client_for(stack.new_account(plan=None).key)
    assert list(client.models.list()) == []
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("llama3.2:3b")


def _plan_id(stack: Stack, code: str) -> int:
    with stack.session() as session:
        return session.execute(select(Plan.id).where(Plan.code == code)).scalar_one()


def _set_membership(stack: Stack, plan_id: int, model: str, *, present: bool) -> None:
    with stack.session() as session, session.begin():
        session.execute(
            delete(PlanModel).where(PlanModel.plan_id == plan_id, PlanModel.model_name == model)
        )
        if present:
            session.add(PlanModel(plan_id=plan_id, model_name=model))


def test_plan_changes_apply_without_a_restart(stack: Stack, client_for: ClientFor) -> None:
    account = stack.new_account(plan="basic", credits=10)
    client = client_for(account.key)
    basic = _plan_id(stack, "basic")
    try:
        _set_membership(stack, basic, "smollm2:135m", present=False)
        _set_membership(stack, basic, "qwen3-30b-40k", present=True)
        ids = sorted(m.id for m in client.models.list())
        assert ids == sorted({*BASIC, "qwen3-30b-40k"} - {"smollm2:135m"})
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("smollm2:135m")
        with pytest.raises(openai.PermissionDeniedError) as caught:
            client.chat.completions.create(model="smollm2:135m", messages=HELLO)
        assert "Pro plan" in str(caught.value.body)
        granted = client.chat.completions.create(model="qwen3-30b-40k", messages=HELLO)
        assert granted.model == "qwen3-30b-40k"
    finally:
        _set_membership(stack, basic, "smollm2:135m", present=True)
        _set_membership(stack, basic, "qwen3-30b-40k", present=False)
    assert sorted(m.id for m in client.models.list()) == sorted(BASIC)
    assert client.chat.completions.create(model="smollm2:135m", messages=HELLO).model == (
        "smollm2:135m"
    )


def test_a_hidden_model_stays_hidden_even_when_a_plan_lists_it(
    stack: Stack, client_for: ClientFor
) -> None:
    account = stack.new_account(plan="basic", credits=10)
    client = client_for(account.key)
    basic = _plan_id(stack, "basic")
    auth = {"Authorization": f"Bearer {account.key}"}
    try:
        _set_membership(stack, basic, "glm-4.7-flash", present=True)  # an admin's slip
        assert sorted(m.id for m in client.models.list()) == sorted(BASIC)
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("glm-4.7-flash")
        answers = [
            httpx.post(
                f"{stack.api_url}/v1/chat/completions",
                json={"model": name, "messages": HELLO},
                headers=auth,
                timeout=10,
            )
            for name in ("glm-4.7-flash", "unknown-model")
        ]
        assert [a.status_code for a in answers] == [404, 404]
        hidden, unknown = (a.json()["error"] for a in answers)
        hidden["message"] = hidden["message"].replace("glm-4.7-flash", "<m>")
        unknown["message"] = unknown["message"].replace("unknown-model", "<m>")
        assert hidden == unknown
    finally:
        _set_membership(stack, basic, "glm-4.7-flash", present=False)
    assert stack.balance(account.account_id) == 10
