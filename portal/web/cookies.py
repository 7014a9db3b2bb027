"""The portal's cookies (names and attributes in one place) and the CSRF token check."""

from __future__ import annotations

import hmac

from fastapi import Request, Response

from broker.sessions import WebSession
from portal.translatable import N_

SESSION_COOKIE = "rsy_session"
CSRF_COOKIE = "rsy_csrf"
LANGUAGE_COOKIE = "rsy_lang"
LANGUAGE_COOKIE_AGE_S = 365 * 24 * 3600


CSRF_REFUSED = N_("The form expired or came from another site. Please try again.")


def csrf_matches(submitted: str | None, expected: str) -> bool:
    """Constant-time: how much of a guess was right must not show in the timing."""
    if not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), expected.encode())


def served_over_https(request: Request, public_base_url: str) -> bool:
    return request.url.scheme == "https" or public_base_url.startswith("https://")


def set_session_cookie(
    response: Response, session: WebSession, *, secure: bool, max_age_s: int
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=max_age_s,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


def set_language_cookie(response: Response, language: str, *, secure: bool) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=LANGUAGE_COOKIE_AGE_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
