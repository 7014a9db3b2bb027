"""The JSON account API: register, log in and out, the account, its password and language."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from broker.sessions import WebSession
from portal.accounts.schemas import (
    AccountOut,
    BalanceOut,
    LanguageIn,
    LoginIn,
    PasswordIn,
    PlanOut,
    RegisterIn,
    SessionOut,
)
from portal.dashboard import reports
from portal.deps import StateDep, WebSessionDep
from portal.openapi import SESSION_ERRORS, error_responses
from portal.state import AppState
from portal.web.cookies import clear_session_cookie, served_over_https, set_session_cookie

router = APIRouter(prefix="/api", tags=["Account API"])


def _session_out(
    request: Request, response: Response, state: AppState, session: WebSession
) -> SessionOut:
    ttl = state.settings.session_idle_ttl_s
    secure = served_over_https(request, state.settings.public_base_url)
    set_session_cookie(response, session, secure=secure, max_age_s=ttl)
    return SessionOut(token=session.token, csrf_token=session.csrf_token, expires_in_s=ttl)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create a user with their own account, and log them in",
    responses=error_responses(400, "Invalid field (`param` says which) or already registered"),
)
async def register(
    body: RegisterIn, request: Request, response: Response, state: StateDep
) -> SessionOut:
    session = await state.authenticator.register(
        email=body.email, phone=body.phone, password=body.password, language=body.language
    )
    return _session_out(request, response, state, session)


@router.post(
    "/auth/login",
    summary="Log in with email and password",
    responses=error_responses(
        401,
        "The email or password is incorrect (one message for both)",
        429,
        "Too many failed attempts for this account or address; see Retry-After",
    ),
)
async def log_in(
    body: LoginIn, request: Request, response: Response, state: StateDep
) -> SessionOut:
    session = await state.authenticator.log_in(
        email=body.email, password=body.password, address=_client_address(request)
    )
    return _session_out(request, response, state, session)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End this session",
    responses=SESSION_ERRORS,
)
async def log_out(
    request: Request, response: Response, session: WebSessionDep, state: StateDep
) -> None:
    await state.authenticator.log_out(session)
    clear_session_cookie(
        response, secure=served_over_https(request, state.settings.public_base_url)
    )


@router.get(
    "/account", summary="The logged-in user's account, plan and balance", responses=SESSION_ERRORS
)
async def account(session: WebSessionDep, state: StateDep) -> AccountOut:
    summary = await reports.summary(state, session)
    profile, credits, subscription = summary.profile, summary.balance, summary.subscription
    plan = None
    if profile.plan_code is not None:
        plan = PlanOut(
            code=profile.plan_code,
            name=profile.plan_name(profile.language) or profile.plan_code,
            requests_per_minute=profile.requests_per_minute or 0,
            status=subscription.status,
            expires_at=subscription.expires_at,
        )
    return AccountOut(
        account_id=profile.account_id,
        email=profile.email,
        phone=profile.phone,
        language="ar" if profile.language == "ar" else "en",
        plan=plan,
        balance=BalanceOut(remaining=credits.remaining, total_granted=credits.total_granted),
    )


@router.post(
    "/account/password",
    summary="Change the password; every session of the user ends and a new one is returned",
    responses={**SESSION_ERRORS, **error_responses(400, "Wrong current password or weak new one")},
)
async def change_password(
    body: PasswordIn,
    request: Request,
    response: Response,
    session: WebSessionDep,
    state: StateDep,
) -> SessionOut:
    fresh = await state.authenticator.change_password(
        session, current=body.current_password, new=body.new_password
    )
    return _session_out(request, response, state, fresh)


@router.put(
    "/account/language",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remember the user's language for pages and notifications",
    responses=SESSION_ERRORS,
)
async def set_language(body: LanguageIn, session: WebSessionDep, state: StateDep) -> None:
    await state.authenticator.set_language(session, body.language)
