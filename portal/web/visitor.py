"""Who is looking at a page: their session (if logged in), language and CSRF token.

CSRF: a logged-in visitor's forms carry their session's token (synchronizer token);
an anonymous visitor's forms (login, register) carry the value of a random HttpOnly
cookie (double submit). Either way a cross-site form cannot know the value.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request, Response

from broker.sessions import WebSession
from portal.deps import StateDep
from portal.exceptions import GatewayError
from portal.web import i18n
from portal.web.cookies import (
    CSRF_COOKIE,
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    csrf_matches,
    served_over_https,
)


@dataclass
class Visitor:
    session: WebSession | None
    language: str
    csrf_token: str
    secure: bool
    # Set on the response when the anonymous visitor had no CSRF cookie yet.
    new_csrf_cookie: str | None = None

    @property
    def logged_in(self) -> bool:
        return self.session is not None

    def csrf_ok(self, submitted: str | None) -> bool:
        return csrf_matches(submitted, self.csrf_token)

    def apply_cookies(self, response: Response) -> None:
        if self.new_csrf_cookie:
            response.set_cookie(
                CSRF_COOKIE,
                self.new_csrf_cookie,
                httponly=True,
                samesite="strict",
                secure=self.secure,
                path="/",
            )


async def get_visitor(request: Request, state: StateDep) -> Visitor:
    token = request.cookies.get(SESSION_COOKIE)
    session = await state.web_sessions.get(token) if token else None
    secure = served_over_https(request, state.settings.public_base_url)
    language = (
        (session.language if session else None)
        or i18n.supported(request.cookies.get(LANGUAGE_COOKIE))
        or i18n.from_accept_language(request.headers.get("accept-language"))
        or state.settings.default_language
    )
    if session is not None:
        return Visitor(session, language, session.csrf_token, secure)
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie:
        return Visitor(None, language, cookie, secure)
    fresh = secrets.token_urlsafe(32)
    return Visitor(None, language, fresh, secure, new_csrf_cookie=fresh)


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


class LoginRequired(GatewayError):
    """A page for members only, seen by a visitor: they are sent to log in first."""

    status, code = 303, "login_required"


async def require_member(request: Request, visitor: VisitorDep) -> WebSession:
    if visitor.session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired("Log in first.", headers={"location": f"/login?next={quote(target)}"})
    return visitor.session


MemberDep = Annotated[WebSession, Depends(require_member)]
