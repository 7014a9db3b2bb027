"""The JSON keys and usage API on the running system, with the official openai client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import openai

from tests.portal.people import Member
from tests.stack import Stack


def _chat(stack: Stack, key: str, content: str = "hello [[sim:tokens=3]]") -> Any:
    with openai.OpenAI(base_url=f"{stack.api_url}/v1", api_key=key, max_retries=0) as client:
        return client.chat.completions.create(
            model="llama3.2:3b", messages=[{"role": "user", "content": content}]
        )


def _wait_usage(member_http: httpx.Client, requests: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    report: dict[str, Any] = member_http.get("/api/usage").json()
    while report["totals"]["requests"] < requests and time.monotonic() < deadline:
        time.sleep(0.1)
        report = member_http.get("/api/usage").json()
    return report


def test_create_list_use_and_delete_a_key(new_member: Callable[..., Member], stack: Stack) -> None:
    member = new_member()
    created = member.http.post(
        "/api/keys", json={"label": "  my   laptop "}, headers={"x-csrf-token": member.csrf_token}
    )
    assert created.status_code == 201
    key = created.json()
    assert key["label"] == "my laptop" and key["key"].startswith("rsy-")
    assert key["prefix"] == key["key"][:12]
    listed = member.http.get("/api/keys").json()
    assert [(k["id"], k["prefix"], k["last_used_at"]) for k in listed] == [
        (key["id"], key["prefix"], None)
    ]
    assert key["key"] not in member.http.get("/api/keys").text  # shown once, never again

    reply = _chat(stack, key["key"])
    assert reply.choices[0].message.content
    assert member.http.get("/api/keys").json()[0]["last_used_at"] is not None
    report = _wait_usage(member.http, 1)
    assert report["totals"]["requests"] == 1
    assert report["days"][-1]["requests"] == 1 and report["hours"][-1]["requests"] == 1
    assert [(m["model"], m["requests"], m["local_requests"]) for m in report["by_model"]] == [
        ("llama3.2:3b", 1, 1)
    ]
    assert [(k["api_key_id"], k["requests"]) for k in report["by_key"]] == [(key["id"], 1)]
    assert member.http.get("/api/account").json()["balance"]["remaining"] == 24

    deleted = member.http.delete(
        f"/api/keys/{key['id']}", headers={"x-csrf-token": member.csrf_token}
    )
    assert deleted.status_code == 204
    assert member.http.get("/api/keys").json() == []
    try:
        _chat(stack, key["key"])
        raise AssertionError("a deleted key was accepted")
    except openai.AuthenticationError as error:
        assert error.status_code == 401


def test_another_users_key_is_not_found(new_member: Callable[..., Member], stack: Stack) -> None:
    owner, intruder = new_member(), new_member()
    key = owner.http.post(
        "/api/keys", json={"label": "mine"}, headers={"x-csrf-token": owner.csrf_token}
    ).json()
    attempt = intruder.http.delete(
        f"/api/keys/{key['id']}", headers={"x-csrf-token": intruder.csrf_token}
    )
    assert attempt.status_code == 404
    assert attempt.json()["error"]["code"] == "key_not_found"
    missing = intruder.http.delete("/api/keys/99999999", headers=intruder.bearer())
    assert missing.json() == attempt.json()  # the same answer as for a key that does not exist
    assert [k["id"] for k in owner.http.get("/api/keys").json()] == [key["id"]]
    assert _chat(stack, key["key"]).choices[0].message.content  # still works for its owner


def test_bad_labels_and_anonymous_callers_are_refused(
    new_member: Callable[..., Member], stack: Stack
) -> None:
    member = new_member()
    empty = member.http.post("/api/keys", json={"label": "   "}, headers=member.bearer())
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "label"
    with httpx.Client(base_url=stack.api_url) as anonymous:
        for method, path in [("GET", "/api/keys"), ("GET", "/api/usage"), ("GET", "/api/account")]:
            response = anonymous.request(method, path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "not_logged_in"
        # An API key is not a session: it cannot manage keys.
        key = member.http.post("/api/keys", json={"label": "k"}, headers=member.bearer()).json()
        as_key = anonymous.get("/api/keys", headers={"authorization": f"Bearer {key['key']}"})
        assert as_key.status_code == 401
