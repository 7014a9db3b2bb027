"""Fresh identities for portal tests, and a logged-in JSON API client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from tests.phones import unused_phone

PASSWORD = "a long passphrase"


def fresh_email() -> str:
    return f"p{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Member:
    email: str
    phone: str
    token: str
    csrf_token: str
    http: httpx.Client  # carries the session cookie

    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


def register(api_url: str, *, language: str = "en", phone: str | None = None) -> Member:
    http = httpx.Client(base_url=api_url, timeout=30)
    email, phone = fresh_email(), phone or unused_phone()
    response = http.post(
        "/api/auth/register",
        json={"email": email, "phone": phone, "password": PASSWORD, "language": language},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Member(email, phone, body["token"], body["csrf_token"], http)
