"""The portal's cookies: names and attributes in one place."""

from __future__ import annotations

from fastapi import Request, Response

from broker.sessions import WebSession

SESSION_COOKIE = "rsy_session"
CSRF_COOKIE = "rsy_csrf"
LANGUAGE_COOKIE = "rsy_lang"
LANGUAGE_COOKIE_AGE_S = 365 * 24 * 3600


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
