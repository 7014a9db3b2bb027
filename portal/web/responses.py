"""Responses every page handler uses: redirects, the CSRF refusal, error pages."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from portal.state import AppState
from portal.translatable import N_
from portal.web.cookies import CSRF_REFUSED
from portal.web.visitor import Visitor


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str = "/dashboard") -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


def error_page(
    state: AppState,
    request: Request,
    visitor: Visitor,
    *,
    heading: str,
    message: str,
    status_code: int,
    back: str = "/",
) -> HTMLResponse:
    translate = state.renderer.translator(visitor.language)
    return state.renderer.render(
        request,
        visitor,
        "error.html",
        {"heading": translate(heading), "message": translate(message), "back": back},
        status_code=status_code,
    )


def csrf_refused(state: AppState, request: Request, visitor: Visitor) -> HTMLResponse:
    return error_page(
        state,
        request,
        visitor,
        heading=N_("Please try again"),
        message=CSRF_REFUSED,
        status_code=403,
    )
