"""The JSON account API on the running system: registration, login, sessions, throttling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.phones import unused_phone
from tests.portal.people import PASSWORD, Member, fresh_email
from tests.stack import Stack


def arabic_indic(digits: str) -> str:
    """Digits as an Arabic keyboard types them (U+0660..U+0669)."""
    return "".join(chr(0x0660 + int(d)) if d.isdigit() else d for d in digits)


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


def test_register_logs_in_with_a_safe_cookie_and_starts_the_trial(stack: Stack) -> None:
    local = unused_phone().removeprefix("+965")
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        response = http.post(
            "/api/auth/register",
            json={
                "email": fresh_email().upper(),
                "phone": arabic_indic(f"{local[:4]} {local[4:]}"),
                "password": PASSWORD,
            },
        )
        assert response.status_code == 201, response.text
        cookie = response.headers["set-cookie"].lower()
        assert "rsy_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert "secure" not in cookie  # served over plain http here
        body = response.json()
        assert body["token"].startswith("rss-") and body["csrf_token"]
        account = http.get("/api/account").json()  # the cookie alone is a session
    assert account["email"] == account["email"].lower()
    assert account["phone"] == f"+965{local}"  # Arabic-Indic digits, stored in E.164
    assert account["plan"]["code"] == "basic"
    assert account["balance"] == {"remaining": 25, "total_granted": 25}


@pytest.mark.parametrize(
    ("change", "param", "code"),
    [
        ({"email": "not-an-email"}, "email", "invalid_email"),
        ({"phone": "12"}, "phone", "invalid_phone"),
        ({"password": "short"}, "password", "weak_password"),
    ],
)
def test_bad_registration_fields_are_named(
    api: httpx.Client, change: dict[str, str], param: str, code: str
) -> None:
    payload = {"email": fresh_email(), "phone": unused_phone(), "password": PASSWORD, **change}
    response = api.post("/api/auth/register", json=payload)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["code"] == code


def test_duplicate_email_or_phone_is_a_clear_error(
    new_member: Callable[..., Member], stack: Stack, api: httpx.Client
) -> None:
    first = new_member()
    again = api.post(
        "/api/auth/register",
        json={"email": first.email, "phone": unused_phone(), "password": PASSWORD},
    )
    assert again.status_code == 400
    assert again.json()["error"] == {
        "message": "This email is already registered.",
        "type": "invalid_request_error",
        "param": "email",
        "code": "already_registered",
    }
    written_locally = first.phone.removeprefix("+965")  # the same number
    same_phone = api.post(
        "/api/auth/register",
        json={"email": fresh_email(), "phone": written_locally, "password": PASSWORD},
    )
    assert same_phone.status_code == 400
    assert same_phone.json()["error"]["param"] == "phone"


def test_login_errors_do_not_reveal_which_emails_exist(
    new_member: Callable[..., Member], stack: Stack, api: httpx.Client
) -> None:
    member = new_member()
    wrong_password = api.post(
        "/api/auth/login", json={"email": member.email, "password": "not the password"}
    )
    unknown_email = api.post(
        "/api/auth/login", json={"email": fresh_email(), "password": "not the password"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.json()["error"]["code"] == "invalid_credentials"
    good = api.post("/api/auth/login", json={"email": member.email.upper(), "password": PASSWORD})
    assert good.status_code == 200 and good.json()["token"] != member.token


def test_failed_logins_are_logged_on_one_greppable_line(stack: Stack, api: httpx.Client) -> None:
    email = fresh_email()
    api.post("/api/auth/login", json={"email": email, "password": "guess"})
    line = f"resayil-auth-failure kind=password ip=127.0.0.1 email={email}"
    assert [entry for entry in stack.api_log().splitlines() if line in entry] != []
    api.get("/v1/models", headers={"authorization": "Bearer rsy-not-a-key"})
    assert "resayil-auth-failure kind=api_key ip=127.0.0.1 key_prefix=rsy-not-a-ke" in (
        stack.api_log()
    )


def test_logins_are_throttled_per_account(
    new_member: Callable[..., Member], stack: Stack, api: httpx.Client
) -> None:
    member = new_member()
    for _ in range(5):
        failed = api.post("/api/auth/login", json={"email": member.email, "password": "guess"})
        assert failed.status_code == 401
    # Now even the right password waits: the throttle is checked before the password.
    blocked = api.post("/api/auth/login", json={"email": member.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "login_throttled"
    assert 1 <= int(blocked.headers["retry-after"]) <= 900
    # Another account from the same address is not affected.
    other = new_member()
    assert (
        api.post("/api/auth/login", json={"email": other.email, "password": PASSWORD}).status_code
        == 200
    )


def test_logins_are_throttled_per_address(new_member: Callable[..., Member], stack: Stack) -> None:
    # A short window, so failures of earlier tests from this address have expired.
    with (
        stack.extra_api(
            "api-throttle", LOGIN_MAX_FAILURES_PER_ADDRESS="3", LOGIN_THROTTLE_WINDOW_S="2"
        ) as url,
        httpx.Client(base_url=url, timeout=30) as api,
    ):
        member = new_member()
        time.sleep(2.1)

        def log_in(email: str, password: str) -> int:
            return api.post(
                "/api/auth/login", json={"email": email, "password": password}
            ).status_code

        # Three different accounts guessed from one address...
        assert [log_in(fresh_email(), "guess") for _ in range(3)] == [401, 401, 401]
        # ...and the address waits, whichever account it tries next.
        assert log_in(member.email, PASSWORD) == 429
        time.sleep(2.1)
        assert log_in(member.email, PASSWORD) == 200


def test_logout_ends_the_session(new_member: Callable[..., Member], stack: Stack) -> None:
    member = new_member()
    assert member.http.get("/api/account").status_code == 200
    with httpx.Client(base_url=stack.api_url) as other:
        assert other.get("/api/account", headers=member.bearer()).status_code == 200
        assert other.post("/api/auth/logout", headers=member.bearer()).status_code == 204
        after = other.get("/api/account", headers=member.bearer())
    assert after.status_code == 401 and after.json()["error"]["code"] == "not_logged_in"
    assert member.http.get("/api/account").status_code == 401  # the cookie was that session


def test_password_change_ends_every_session(
    new_member: Callable[..., Member], stack: Stack, api: httpx.Client
) -> None:
    member = new_member()
    second = api.post("/api/auth/login", json={"email": member.email, "password": PASSWORD})
    second_token = second.json()["token"]
    wrong = api.post(
        "/api/account/password",
        json={"current_password": "nope", "new_password": "another long one"},
        headers=member.bearer(),
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "current_password"
    changed = api.post(
        "/api/account/password",
        json={"current_password": PASSWORD, "new_password": "another long one"},
        headers=member.bearer(),
    )
    assert changed.status_code == 200
    for ended in (member.token, second_token):
        assert (
            api.get("/api/account", headers={"authorization": f"Bearer {ended}"}).status_code == 401
        )
    fresh = {"authorization": f"Bearer {changed.json()['token']}"}
    assert api.get("/api/account", headers=fresh).status_code == 200
    old = api.post("/api/auth/login", json={"email": member.email, "password": PASSWORD})
    assert old.status_code == 401
    new = api.post("/api/auth/login", json={"email": member.email, "password": "another long one"})
    assert new.status_code == 200


def test_cookie_sessions_need_the_csrf_header_to_change_anything(
    new_member: Callable[..., Member], stack: Stack
) -> None:
    member: Member = new_member()
    refused = member.http.post("/api/keys", json={"label": "ci"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    forged = member.http.post("/api/keys", json={"label": "ci"}, headers={"x-csrf-token": "forged"})
    assert forged.status_code == 403
    assert member.http.get("/api/keys").json() == []  # nothing was created
    made = member.http.post(
        "/api/keys", json={"label": "ci"}, headers={"x-csrf-token": member.csrf_token}
    )
    assert made.status_code == 201


def test_language_is_remembered_per_user(
    new_member: Callable[..., Member], stack: Stack, api: httpx.Client
) -> None:
    member = new_member()
    assert (
        api.put(
            "/api/account/language", json={"language": "ar"}, headers=member.bearer()
        ).status_code
        == 204
    )
    again = api.post("/api/auth/login", json={"email": member.email, "password": PASSWORD})
    assert (
        api.get(
            "/api/account", headers={"authorization": f"Bearer {again.json()['token']}"}
        ).json()["language"]
        == "ar"
    )
    bad = api.put("/api/account/language", json={"language": "fr"}, headers=member.bearer())
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "language"
