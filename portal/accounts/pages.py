"""Pages: register, log in, log out, the account page, the language switch."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from broker.sessions import WebSession
from portal.accounts import service
from portal.accounts.login import LoginThrottled
from portal.accounts.service import InvalidCredentials
from portal.deps import StateDep
from portal.exceptions import InvalidRequest
from portal.translatable import N_
from portal.web import i18n
from portal.web.cookies import clear_session_cookie, set_language_cookie, set_session_cookie
from portal.web.responses import csrf_refused, redirect, safe_next
from portal.web.visitor import MemberDep, Visitor, VisitorDep

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]


@router.get("/register")
async def register_page(request: Request, visitor: VisitorDep, state: StateDep) -> Response:
    if visitor.logged_in:
        return redirect("/dashboard")
    return state.renderer.render(
        request,
        visitor,
        "accounts/register.html",
        {"form": {"email": "", "phone": ""}, "errors": {}},
    )


@router.post("/register")
async def register(
    request: Request,
    visitor: VisitorDep,
    state: StateDep,
    csrf_token: FormText = "",
    email: FormText = "",
    phone: FormText = "",
    password: FormText = "",
) -> Response:
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    try:
        session = await state.authenticator.register(
            email=email, phone=phone, password=password, language=visitor.language
        )
    except InvalidRequest as error:
        message = state.renderer.translator(visitor.language)(error.message)
        return state.renderer.render(
            request,
            visitor,
            "accounts/register.html",
            {
                "form": {"email": email, "phone": phone},
                "errors": {error.param: message} if error.param else {},
                "error": message,
            },
            status_code=400,
        )
    return _logged_in(state, visitor, session, "/dashboard")


@router.get("/login")
async def login_page(
    request: Request, visitor: VisitorDep, state: StateDep, next: str = "/dashboard"
) -> Response:
    if visitor.logged_in:
        return redirect(safe_next(next))
    return state.renderer.render(
        request, visitor, "accounts/login.html", {"next": safe_next(next), "email": ""}
    )


@router.post("/login")
async def log_in(
    request: Request,
    visitor: VisitorDep,
    state: StateDep,
    csrf_token: FormText = "",
    email: FormText = "",
    password: FormText = "",
    next: FormText = "/dashboard",
) -> Response:
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    address = request.client.host if request.client else "-"
    try:
        session = await state.authenticator.log_in(email=email, password=password, address=address)
    except (InvalidCredentials, LoginThrottled) as error:
        message = state.renderer.translator(visitor.language)(error.message)
        page = state.renderer.render(
            request,
            visitor,
            "accounts/login.html",
            {"next": safe_next(next), "email": email, "error": message},
            status_code=error.status,
        )
        page.headers.update(error.headers)
        return page
    return _logged_in(state, visitor, session, safe_next(next))


@router.post("/logout")
async def log_out(
    request: Request, visitor: VisitorDep, state: StateDep, csrf_token: FormText = ""
) -> Response:
    if visitor.session is None:
        return redirect("/")
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    await state.authenticator.log_out(visitor.session)
    response = redirect("/")
    clear_session_cookie(response, secure=visitor.secure)
    return response


@router.post("/language")
async def switch_language(
    request: Request,
    visitor: VisitorDep,
    state: StateDep,
    csrf_token: FormText = "",
    language: FormText = "",
    next: FormText = "/",
) -> Response:
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    chosen = i18n.supported(language) or visitor.language
    if visitor.session is not None:
        await state.authenticator.set_language(visitor.session, chosen)
    response = redirect(safe_next(next, default="/"))
    set_language_cookie(response, chosen, secure=visitor.secure)
    return response


@router.get("/account")
async def account_page(
    request: Request, visitor: VisitorDep, member: MemberDep, state: StateDep
) -> HTMLResponse:
    return await _account(request, visitor, state, member.user_id, member.account_id)


@router.post("/account/password")
async def change_password(
    request: Request,
    visitor: VisitorDep,
    member: MemberDep,
    state: StateDep,
    csrf_token: FormText = "",
    current_password: FormText = "",
    new_password: FormText = "",
) -> Response:
    if not visitor.csrf_ok(csrf_token):
        return csrf_refused(state, request, visitor)
    translate = state.renderer.translator(visitor.language)
    try:
        fresh = await state.authenticator.change_password(
            member, current=current_password, new=new_password
        )
    except InvalidRequest as error:
        message = translate(error.message)
        return await _account(
            request,
            visitor,
            state,
            member.user_id,
            member.account_id,
            error=message,
            errors={error.param: message} if error.param else {},
            status_code=400,
        )
    visitor.session, visitor.csrf_token = fresh, fresh.csrf_token
    page = await _account(
        request,
        visitor,
        state,
        member.user_id,
        member.account_id,
        notice=translate(N_("Your password was changed. Other sessions were logged out.")),
    )
    set_session_cookie(
        page, fresh, secure=visitor.secure, max_age_s=state.settings.session_idle_ttl_s
    )
    return page


def _logged_in(state: StateDep, visitor: Visitor, session: WebSession, target: str) -> Response:
    """On to `target` with the new session's cookie; its user's language goes with it."""
    response = redirect(target)
    set_session_cookie(
        response, session, secure=visitor.secure, max_age_s=state.settings.session_idle_ttl_s
    )
    set_language_cookie(response, session.language, secure=visitor.secure)
    return response


async def _account(
    request: Request,
    visitor: VisitorDep,
    state: StateDep,
    user_id: int,
    account_id: int,
    *,
    status_code: int = 200,
    **context: object,
) -> HTMLResponse:
    def read() -> service.Profile:
        with state.sessions() as db:
            return service.profile(db, user_id=user_id, account_id=account_id)

    profile = await anyio.to_thread.run_sync(read)
    context.setdefault("errors", {})
    return state.renderer.render(
        request,
        visitor,
        "accounts/account.html",
        {"profile": profile, **context},
        status_code=status_code,
    )
