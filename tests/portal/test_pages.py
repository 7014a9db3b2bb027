"""The HTML pages over plain HTTP: CSRF, authorisation, sessions, no user enumeration."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import select

from schema.models import Plan
from tests.phones import unused_phone
from tests.portal.people import PASSWORD, Member, fresh_email
from tests.stack import Stack

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(page: httpx.Response) -> str:
    match = CSRF_FIELD.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


@pytest.fixture
def browser_like(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


def log_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    token = form_token(client.get("/login"))
    return client.post("/login", data={"csrf_token": token, "email": email, "password": password})


def test_members_pages_send_visitors_to_log_in(browser_like: httpx.Client) -> None:
    for path in ("/dashboard", "/keys", "/account", "/billing", "/keys/1/delete"):
        response = browser_like.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={path}"


def test_forms_without_the_csrf_token_are_refused(
    new_member: Callable[..., Member], browser_like: httpx.Client
) -> None:
    member = new_member()
    # Anonymous forms: the token must match the visitor's own CSRF cookie.
    form_token(browser_like.get("/login"))
    refused = browser_like.post(
        "/login", data={"csrf_token": "forged", "email": member.email, "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert "rsy_session" not in refused.headers.get("set-cookie", "")
    # A logged-in member's forms: the token must be their session's.
    assert log_in(browser_like, member.email).status_code == 303
    for path, data in [
        ("/keys", {"label": "forged"}),
        ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 12}),
        ("/logout", {}),
    ]:
        response = browser_like.post(path, data=data)  # no token at all
        assert response.status_code == 403, path
        response = browser_like.post(path, data={**data, "csrf_token": member.csrf_token})
        assert response.status_code == 403, path  # another session's token is no better
    assert member.http.get("/api/keys").json() == []  # nothing was created
    assert browser_like.get("/dashboard").status_code == 200  # and nobody was logged out


def test_another_users_key_cannot_be_deleted_from_the_pages(
    new_member: Callable[..., Member], browser_like: httpx.Client
) -> None:
    owner, intruder = new_member(), new_member()
    key = owner.http.post("/api/keys", json={"label": "mine"}, headers=owner.bearer()).json()
    log_in(browser_like, intruder.email)
    token = form_token(browser_like.get("/dashboard"))
    assert browser_like.get(f"/keys/{key['id']}/delete").status_code == 404
    attempt = browser_like.post(f"/keys/{key['id']}/delete", data={"csrf_token": token})
    assert attempt.status_code == 404
    assert [k["id"] for k in owner.http.get("/api/keys").json()] == [key["id"]]


def test_a_session_is_dead_after_logout(
    new_member: Callable[..., Member], browser_like: httpx.Client, stack: Stack
) -> None:
    member = new_member()
    log_in(browser_like, member.email)
    stolen = browser_like.cookies["rsy_session"]
    token = form_token(browser_like.get("/dashboard"))
    out = browser_like.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert 'rsy_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    with httpx.Client(base_url=stack.api_url, cookies={"rsy_session": stolen}) as replay:
        assert replay.get("/dashboard").status_code == 303
        assert replay.get("/api/account").status_code == 401


def test_wrong_password_and_unknown_email_read_the_same(
    new_member: Callable[..., Member], browser_like: httpx.Client
) -> None:
    member = new_member()
    wrong = log_in(browser_like, member.email, "not the password")
    unknown = log_in(browser_like, fresh_email(), "not the password")
    assert wrong.status_code == unknown.status_code == 401

    def alert(page: httpx.Response) -> str:
        found = re.search(r'role="alert"[^>]*>([^<]+)<', page.text)
        assert found, page.text[:300]
        return found.group(1)

    assert alert(wrong) == alert(unknown) == "The email or password is incorrect."


def test_login_redirects_only_within_the_site(
    new_member: Callable[..., Member], browser_like: httpx.Client
) -> None:
    member = new_member()
    token = form_token(browser_like.get("/login"))
    response = browser_like.post(
        "/login",
        data={
            "csrf_token": token,
            "email": member.email,
            "password": PASSWORD,
            "next": "//evil.example/steal",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    assert browser_like.get("/login?next=/keys").headers["location"] == "/keys"


def test_registration_errors_are_tied_to_their_field(browser_like: httpx.Client) -> None:
    token = form_token(browser_like.get("/register"))
    page = browser_like.post(
        "/register",
        data={"csrf_token": token, "email": fresh_email(), "phone": "12", "password": PASSWORD},
    )
    assert page.status_code == 400
    assert re.search(r'id="phone"[^>]*aria-invalid="true"', page.text.replace("\n", " "))
    assert 'id="phone-error"' in page.text and "aria-describedby" in page.text
    assert 'value="12"' in page.text  # what was typed is kept


def test_cookies_are_secure_behind_https(stack: Stack) -> None:
    with (
        stack.extra_api("api-https", PUBLIC_BASE_URL="https://portal.example.com") as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        page = client.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
        registered = client.post(
            "/api/auth/register",
            json={"email": fresh_email(), "phone": unused_phone(), "password": PASSWORD},
        )
        cookie = registered.headers["set-cookie"].lower()
        assert "rsy_session=" in cookie and "secure" in cookie and "httponly" in cookie


def test_arabic_pages_are_right_to_left(browser_like: httpx.Client) -> None:
    page = browser_like.get("/", headers={"accept-language": "ar-KW,ar;q=0.9,en;q=0.8"})
    assert '<html lang="ar" dir="rtl">' in page.text
    english = browser_like.get("/", headers={"accept-language": "en-US,en;q=0.9"})
    assert '<html lang="en" dir="ltr">' in english.text


def test_landing_shows_plans_and_models_from_the_data(
    stack: Stack, browser_like: httpx.Client
) -> None:
    page = browser_like.get("/").text
    for hidden in ("glm-4.7-flash", "bge-m3", "nomic-embed-text"):
        assert hidden not in page
    assert 'data-plan="basic"' in page and "5.000 KWD" in page
    assert f"{stack.api_url}/v1" in page  # the API example uses the real base URL
    with stack.session() as session, session.begin():
        basic = session.scalars(select(Plan).where(Plan.code == "basic")).one()
        original = basic.monthly_price_fils
        basic.monthly_price_fils = 4_250
    try:
        assert "4.250 KWD" in browser_like.get("/").text
    finally:
        with stack.session() as session, session.begin():
            session.scalars(
                select(Plan).where(Plan.code == "basic")
            ).one().monthly_price_fils = original


def test_arabic_first_is_a_setting_and_a_users_choice_follows_them(
    stack: Stack, new_member: Callable[..., Member]
) -> None:
    with (
        stack.extra_api("api-arabic-first", DEFAULT_LANGUAGE="ar") as url,
        httpx.Client(base_url=url, timeout=30) as visitor,
    ):
        assert '<html lang="ar" dir="rtl">' in visitor.get("/").text
    member = new_member(language="ar")
    with httpx.Client(base_url=stack.api_url, timeout=30) as fresh_browser:
        log_in(fresh_browser, member.email)  # no language cookie, an English browser
        page = fresh_browser.get("/dashboard", headers={"accept-language": "en"})
        assert '<html lang="ar" dir="rtl">' in page.text
