"""The operator CLI against a real database: JSON out, clear errors, one ledger row a grant."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from portal.keys.service import digest
from resayil.cli import main
from schema.db import make_engine, make_session_factory
from schema.migrate import upgrade
from schema.models import ApiKey, CreditEntry, User
from tests.phones import unused_phone
from tests.services import PostgresServer


@pytest.fixture
def database_url(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    upgrade(postgres_server.url)
    monkeypatch.setenv("DATABASE_URL", postgres_server.url)
    return postgres_server.url


def run(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(main, list(args))
    text = result.output.strip().splitlines()[-1] if result.output.strip() else "{}"
    return result.exit_code, json.loads(text)


def arabic_digits(number: int) -> str:
    return f"{number:06d}".translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


def new_email() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}@example.com"


def test_users_keys_and_credits(database_url: str) -> None:
    email = new_email()
    code, user = run(
        "users",
        "create",
        "--email",
        email,
        "--phone",
        # In Arabic-Indic digits, as a phone's keyboard may give them.
        "+965" + "".join(chr(0x0660 + int(d)) for d in unused_phone().removeprefix("+965")),
        "--password",
        "a long password",
        "--plan",
        "enterprise",
        "--credits",
        "7",
    )
    assert code == 0, user
    assert user["plan"] == "enterprise" and user["credits"] == 7
    assert str(user["phone"]).startswith("+965")

    code, key = run("keys", "create", "--email", email, "--label", "ci")
    assert code == 0
    raw = str(key["key"])
    assert raw.startswith("rsy-") and len(raw) >= 4 + 43
    assert key["prefix"] == raw[:12]

    code, granted = run("credits", "grant", "--email", email, "--amount", "5", "--reason", "promo")
    assert code == 0 and granted["balance"] == 12

    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        stored = session.scalars(select(ApiKey).where(ApiKey.digest == digest(raw))).one()
        assert stored.prefix == raw[:12]
        password_hash = session.scalars(select(User.password_hash).where(User.email == email)).one()
        assert password_hash.startswith("$argon2")
        kinds = session.scalars(
            select(CreditEntry.kind)
            .where(CreditEntry.account_id == user["account_id"])
            .order_by(CreditEntry.id)
        ).all()
        assert kinds == ["grant", "grant"]
    engine.dispose()


def test_duplicate_and_bad_input_are_clear_errors(database_url: str) -> None:
    email = new_email()
    phone = unused_phone()
    assert (
        run("users", "create", "--email", email, "--phone", phone, "--password", "long enough")[0]
        == 0
    )
    result = CliRunner().invoke(
        main,
        [
            "users",
            "create",
            "--email",
            email,
            "--phone",
            "+96550001111",
            "--password",
            "long enough",
        ],
    )
    assert result.exit_code == 1
    assert (
        json.loads(result.output.strip().splitlines()[-1])["error"]["code"] == "already_registered"
    )
    result = CliRunner().invoke(
        main,
        ["users", "create", "--email", new_email(), "--phone", "12", "--password", "long enough"],
    )
    assert result.exit_code == 1
    assert json.loads(result.output.strip().splitlines()[-1])["error"]["code"] == "invalid_phone"
    result = CliRunner().invoke(
        main, ["users", "create", "--email", new_email(), "--phone", phone, "--password", "short"]
    )
    assert result.exit_code == 1
    assert json.loads(result.output.strip().splitlines()[-1])["error"]["code"] == "weak_password"
    result = CliRunner().invoke(main, ["keys", "create", "--email", new_email()])
    assert result.exit_code == 1
    assert json.loads(result.output.strip().splitlines()[-1])["error"]["code"] == "user_not_found"


def test_db_upgrade_is_idempotent(database_url: str) -> None:
    assert run("db", "upgrade") == (0, {"database": "upgraded"})


@pytest.mark.parametrize("process", ["api", "dispatcher", "worker", "scheduler"])
def test_an_unknown_log_level_stops_a_process_before_it_starts(
    process: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    result = CliRunner().invoke(main, [process])
    assert result.exit_code == 2
    assert "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR: 'CHATTY'" in result.output
