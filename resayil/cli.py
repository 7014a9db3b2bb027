"""The `resayil` command: operator actions (JSON output) and the process entry points."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from portal.config import load_settings
from portal.exceptions import GatewayError


def emit(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, default=str))


def fail(error: Exception) -> None:
    code = error.code if isinstance(error, GatewayError) else "error"
    if isinstance(error, RedisError):
        code, error = "redis_unavailable", Exception(f"Redis is unreachable: {error}")
    click.echo(json.dumps({"error": {"code": code, "message": str(error)}}), err=True)
    sys.exit(1)


def with_session(work: Any) -> Any:
    from schema.db import make_engine, make_session_factory

    engine = make_engine(load_settings().database_url)
    try:
        with make_session_factory(engine)() as session, session.begin():
            return work(session)
    finally:
        engine.dispose()


def sync_redis() -> Any:
    from redis import Redis

    return Redis.from_url(load_settings().redis_url)


@click.group()
def main() -> None:
    """Resayil LLM Portal: an OpenAI-compatible, pay-per-use gateway in front of Ollama."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to DATABASE_URL."""
    from schema.migrate import upgrade

    upgrade(load_settings().database_url)
    emit({"database": "upgraded"})


@main.group()
def users() -> None:
    """People who log in."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--phone", required=True)
@click.option("--password", required=True)
@click.option("--plan", type=click.Choice(["basic", "pro", "enterprise"]), default="basic")
@click.option("--credits", "credits_", type=click.IntRange(min=0), default=0)
@click.option("--admin", is_flag=True)
def users_create(
    email: str, phone: str, password: str, plan: str, credits_: int, admin: bool
) -> None:
    """Create a user with their own account on a plan, with initial credits."""
    from portal.accounts.service import create_user

    def work(session: Session) -> dict[str, Any]:
        r = create_user(
            session,
            email=email,
            phone=phone,
            password=password,
            plan_code=plan,
            credits=credits_,
            admin=admin,
        )
        return {
            "user_id": r.user_id,
            "account_id": r.account_id,
            "email": r.email,
            "phone": r.phone,
            "plan": r.plan,
            "credits": r.credits,
            "admin": admin,
        }

    try:
        emit(with_session(work))
    except GatewayError as error:
        fail(error)


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--email", required=True)
@click.option("--label", default="default")
def keys_create(email: str, label: str) -> None:
    """Create an API key for the account the user owns; the key is printed only now."""
    from portal.accounts.service import owned_account
    from portal.keys.service import create_key

    def work(session: Session) -> dict[str, Any]:
        user_id, account_id = owned_account(session, email=email)
        created = create_key(session, account_id=account_id, user_id=user_id, label=label)
        return {
            "id": created.id,
            "label": created.label,
            "key": created.key,
            "prefix": created.prefix,
            "account_id": account_id,
        }

    try:
        emit(with_session(work))
    except GatewayError as error:
        fail(error)


@keys.command("delete")
@click.option("--email", required=True, help="the account owner's email")
@click.option("--id", "key_id", type=int, required=True, help="the key's id")
def keys_delete(email: str, key_id: int) -> None:
    """Delete one of the account's keys; it fails on its very next request."""
    from broker.auth_cache import revoke_key
    from portal.accounts.service import owned_account
    from portal.keys.service import delete_key

    def work(session: Session) -> dict[str, Any]:
        _user_id, account_id = owned_account(session, email=email)
        with sync_redis() as redis:
            delete_key(
                session,
                account_id=account_id,
                key_id=key_id,
                revoke=lambda digest: revoke_key(redis, digest),
                actor="cli",
            )
        return {"id": key_id, "deleted": True}

    try:
        emit(with_session(work))
    except (GatewayError, RedisError) as error:
        fail(error)  # nothing changed: the database transaction was rolled back


@main.group()
def credits() -> None:
    """Credit balances."""


@credits.command("grant")
@click.option("--email", required=True)
@click.option("--amount", type=click.IntRange(min=1), required=True)
@click.option("--reason", required=True)
def credits_grant(email: str, amount: int, reason: str) -> None:
    """Add credits to the account the user owns (one ledger row)."""
    from portal.accounts.service import owned_account
    from schema import ledger

    def work(session: Session) -> dict[str, Any]:
        _user_id, account_id = owned_account(session, email=email)
        balance = ledger.grant(
            session, account_id=account_id, amount=amount, kind="grant", reason=reason
        )
        return {"account_id": account_id, "granted": amount, "balance": balance}

    try:
        emit(with_session(work))
    except GatewayError as error:
        fail(error)


@main.group()
def accounts() -> None:
    """Accounts: what pays, and its limits."""


@accounts.command("set-limit")
@click.option("--email", required=True, help="the account owner's email")
@click.option(
    "--rpm",
    type=click.IntRange(min=0),
    default=None,
    help="requests per minute; 0 = unlimited; omit to return to the plan's limit",
)
def accounts_set_limit(email: str, rpm: int | None) -> None:
    """Override the account's rate limit (a negotiated rate, or a load test)."""
    from broker.auth_cache import revoke_account
    from portal.accounts.service import set_rate_limit

    def work(session: Session) -> dict[str, Any]:
        account_id = set_rate_limit(session, email=email, rpm=rpm, actor="cli")
        with sync_redis() as redis:
            revoke_account(redis, account_id)  # the api's cached limit must not linger
        return {"account_id": account_id, "rpm_override": rpm}

    try:
        emit(with_session(work))
    except (GatewayError, RedisError) as error:
        fail(error)  # nothing changed: the database transaction was rolled back


def _register_processes() -> None:
    from resayil.processes import api, dispatcher, run, scheduler, worker
    from simulator.cli import sim_ollama
    from simulator.myfatoorah.cli import sim_myfatoorah

    for command in (api, dispatcher, worker, scheduler, run, sim_ollama, sim_myfatoorah):
        main.add_command(command)


_register_processes()
