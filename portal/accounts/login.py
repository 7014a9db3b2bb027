"""Logging in and out: credentials checked under a throttle, sessions kept in Redis."""

from __future__ import annotations

import logging
import re

import anyio
from sqlalchemy.orm import Session, sessionmaker

from broker.login_throttle import LoginThrottle
from broker.sessions import SessionStore, WebSession
from portal.accounts import service
from portal.accounts.service import Identity, InvalidCredentials
from portal.config import PortalSettings
from portal.exceptions import RateLimited
from portal.translatable import N_

security_log = logging.getLogger("resayil.security")
_LOGGABLE = re.compile(r"[^A-Za-z0-9@._+\-]")


class LoginThrottled(RateLimited):
    code = "login_throttled"


def _loggable(email: str) -> str:
    # Typed by a stranger: nothing in it may forge or split a log line.
    return _LOGGABLE.sub("?", email.strip().lower())[:100] or "-"


class Authenticator:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        store: SessionStore,
        throttle: LoginThrottle,
        settings: PortalSettings,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.throttle = throttle
        self.settings = settings

    async def log_in(self, *, email: str, password: str, address: str) -> WebSession:
        email = email.strip().lower()
        wait_s = await self.throttle.wait_s(email=email, address=address)
        if wait_s:
            security_log.warning(
                "resayil-auth-failure kind=login_throttled ip=%s email=%s",
                address,
                _loggable(email),
            )
            raise LoginThrottled(
                N_("Too many failed attempts. Please wait a few minutes and try again."),
                headers={"retry-after": str(wait_s)},
            )

        def check() -> Identity:
            with self.sessions() as session:
                return service.check_credentials(session, email=email, password=password)

        try:
            identity = await anyio.to_thread.run_sync(check)
        except InvalidCredentials:
            await self.throttle.record_failure(email=email, address=address)
            security_log.warning(
                "resayil-auth-failure kind=password ip=%s email=%s", address, _loggable(email)
            )
            raise
        await self.throttle.record_success(email=email)
        return await self.store.create(
            user_id=identity.user_id, account_id=identity.account_id, language=identity.language
        )

    async def register(self, *, email: str, phone: str, password: str, language: str) -> WebSession:
        def create() -> service.Registered:
            with self.sessions() as session, session.begin():
                return service.register(
                    session,
                    email=email,
                    phone=phone,
                    password=password,
                    language=language,
                    plan_code=self.settings.signup_plan or None,
                    credits=self.settings.signup_credits,
                    trial_days=self.settings.signup_trial_days,
                )

        registered = await anyio.to_thread.run_sync(create)
        return await self.store.create(
            user_id=registered.user_id, account_id=registered.account_id, language=language
        )

    async def log_out(self, web_session: WebSession) -> None:
        await self.store.end(web_session)

    async def change_password(
        self, web_session: WebSession, *, current: str, new: str
    ) -> WebSession:
        """Change it and end every session of the user; the caller gets a fresh one."""

        def write() -> None:
            with self.sessions() as session, session.begin():
                service.change_password(
                    session, user_id=web_session.user_id, current=current, new=new
                )

        await anyio.to_thread.run_sync(write)
        await self.store.end_all_for_user(web_session.user_id)
        return await self.store.create(
            user_id=web_session.user_id,
            account_id=web_session.account_id,
            language=web_session.language,
        )

    async def set_language(self, web_session: WebSession, language: str) -> None:
        def write() -> None:
            with self.sessions() as session, session.begin():
                service.set_language(session, user_id=web_session.user_id, language=language)

        await anyio.to_thread.run_sync(write)
        await self.store.set_language(web_session.token, language)
