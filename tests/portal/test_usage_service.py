"""The dashboard's usage report and balance, read from rollups written by `ledger.settle`.

One account's usage is settled at chosen moments around Kuwait's (UTC+3) day, week and
month boundaries; every figure below is counted by hand from the `SEEDED` table.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from portal.accounts.service import create_user
from portal.exceptions import NotFound
from portal.keys.service import create_key
from portal.usage.service import (
    Balance,
    Bucket,
    KeyUsage,
    ModelUsage,
    UsageReport,
    balance,
    usage_report,
)
from schema import ledger, usage_rollup
from schema.messages import Settlement
from schema.models import ApiKey
from tests.databases import Sessions

KUWAIT = ZoneInfo("Asia/Kuwait")
NOW = datetime(2026, 3, 4, 10, 15, tzinfo=UTC)  # Wednesday 13:15 in Kuwait
LLAMA, QWEN, GPT = "llama3.2:3b", "qwen3.5:cloud", "gpt-oss:20b"

# name, finished at (UTC), key, model, pool, status, prompt, completion, credits
SEEDED = [
    ("now", datetime(2026, 3, 4, 10, 5), "first", LLAMA, "local", "ok", 10, 20, 1),
    ("end of hour", datetime(2026, 3, 4, 10, 59, 59), "old", QWEN, "cloud", "ok", 7, 8, 2),
    # 01:30 on Wednesday in Kuwait: today, not yesterday.
    ("22:30 UTC", datetime(2026, 3, 3, 22, 30), "first", LLAMA, "cloud", "ok", 1, 2, 2),
    ("23:59 local", datetime(2026, 3, 3, 20, 59), "first", LLAMA, "local", "error", 5, 0, 0),
    ("before 24 h", datetime(2026, 3, 3, 10, 59), "old", LLAMA, "local", "cancelled", 3, 1, 0),
    ("Monday 00:30", datetime(2026, 3, 1, 21, 30), "first", QWEN, "cloud", "ok", 2, 2, 2),
    ("Sunday 23:30", datetime(2026, 3, 1, 20, 30), "first", QWEN, "cloud", "ok", 3, 3, 2),
    ("February", datetime(2026, 2, 28, 20, 59), "first", LLAMA, "local", "ok", 1, 1, 1),
    ("first of 30 days", datetime(2026, 2, 2, 21, 0), "first", LLAMA, "local", "ok", 4, 4, 1),
    ("before 30 days", datetime(2026, 2, 2, 20, 59), "old", LLAMA, "local", "ok", 6, 6, 1),
    ("first of 12 months", datetime(2025, 3, 31, 21, 0), "first", LLAMA, "local", "ok", 1, 0, 1),
    ("before 12 months", datetime(2025, 3, 31, 20, 30), "first", LLAMA, "local", "ok", 1, 0, 1),
]
# Without a key, at 08:00 in Kuwait: 4 requests, 1 failed, 40 + 50 tokens, 3 credits.
KEYLESS = [
    ("keyless", datetime(2026, 3, 4, 5, 1), None, GPT, "local", "ok", 10, 12, 1),
    ("keyless", datetime(2026, 3, 4, 5, 2), None, GPT, "local", "ok", 10, 13, 1),
    ("keyless", datetime(2026, 3, 4, 5, 3), None, GPT, "local", "ok", 10, 25, 1),
    ("keyless", datetime(2026, 3, 4, 5, 4), None, GPT, "local", "error", 10, 0, 0),
]


@dataclass(frozen=True)
class Seeded:
    sessions: Sessions
    account_id: int
    keys: dict[str, int]  # "first", "old" (deleted)
    prefixes: dict[str, str]
    other_account_id: int
    other_key_id: int


def new_user(session: Session, *, credits: int = 0) -> tuple[int, int]:
    """(user id, account id) of a new user with their own account."""
    registered = create_user(
        session,
        email=f"usage-{uuid.uuid4().hex}@example.com",
        phone=f"+96550{uuid.uuid4().int % 1_000_000:06d}",
        password="correct horse battery staple",
        plan_code="pro",
        credits=credits,
    )
    return registered.user_id, registered.account_id


def new_key(session: Session, *, account_id: int, user_id: int, label: str) -> tuple[int, str]:
    created = create_key(session, account_id=account_id, user_id=user_id, label=label)
    return created.id, created.prefix


def settlement(account_id: int, key_id: int, row: tuple[object, ...]) -> Settlement:
    _name, at, _key, model, pool, status, prompt, completion, credits = row
    assert isinstance(at, datetime)
    return Settlement.model_validate(
        {
            "request_id": uuid.uuid4().hex,
            "account_id": account_id,
            "api_key_id": key_id,
            "model_requested": model,
            "model_served": model,
            "pool": pool,
            "credits_reserved": credits,
            "credits_charged": credits,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "status": status,
            "finished_at_ms": int(at.replace(tzinfo=UTC).timestamp() * 1000),
        }
    )


@pytest.fixture(scope="module")
def seeded(sessions: Sessions) -> Seeded:
    with sessions() as session, session.begin():
        user_id, account_id = new_user(session)
        made = {
            label: new_key(session, account_id=account_id, user_id=user_id, label=label)
            for label in ("first", "old")
        }
        keys = {label: key_id for label, (key_id, _prefix) in made.items()}
        other_user, other_account = new_user(session)
        other_key, _ = new_key(session, account_id=other_account, user_id=other_user, label="x")
    with sessions() as session, session.begin():
        ledger.settle(session, [settlement(account_id, keys[row[2]], row) for row in SEEDED])
        # Another account, same moments: none of it may show in the first one's report.
        ledger.settle(session, [settlement(other_account, other_key, row) for row in SEEDED[:3]])
        # Requests without a key, rolled up as settle would (there is no key 0 for a usage
        # row to point at).
        usage_rollup.add(session, [settlement(account_id, 0, row) for row in KEYLESS])
        session.execute(update(ApiKey).where(ApiKey.id == keys["old"]).values(deleted_at=NOW))
    prefixes = {label: prefix for label, (_key_id, prefix) in made.items()}
    return Seeded(sessions, account_id, keys, prefixes, other_account, other_key)


def report_of(
    sessions: Sessions, account_id: int, *, now: datetime = NOW, tz: ZoneInfo = KUWAIT
) -> UsageReport:
    with sessions() as session:
        return usage_report(session, account_id=account_id, now=now, tz=tz)


def kw(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=KUWAIT)


def nonzero(buckets: list[Bucket]) -> dict[datetime, tuple[int, ...]]:
    return {
        b.start: (b.requests, b.failed, b.prompt_tokens, b.completion_tokens, b.credits)
        for b in buckets
        if b.requests
    }


def test_every_bucket_is_there_oldest_first_starting_in_the_report_zone(seeded: Seeded) -> None:
    report = report_of(seeded.sessions, seeded.account_id)
    assert [b.start for b in report.hours] == [
        kw(2026, 3, 3, 14) + timedelta(hours=n) for n in range(24)
    ]
    assert [b.start for b in report.days] == [kw(2026, 2, 3) + timedelta(days=n) for n in range(30)]
    assert [b.start for b in report.weeks] == [
        kw(2025, 12, 15) + timedelta(weeks=n) for n in range(12)
    ]
    assert [b.start for b in report.months] == [kw(2025, month, 1) for month in range(4, 13)] + [
        kw(2026, month, 1) for month in (1, 2, 3)
    ]
    series = report.hours + report.days + report.weeks + report.months
    assert {b.start.utcoffset() for b in series} == {timedelta(hours=3)}
    assert report.hours[-1].start == kw(2026, 3, 4, 13)  # NOW is 13:15 in Kuwait
    assert report.weeks[-1].start.weekday() == 0


def test_hours_days_weeks_and_months_add_up_in_kuwait_time(seeded: Seeded) -> None:
    report = report_of(seeded.sessions, seeded.account_id)
    # (requests, failed, prompt tokens, completion tokens, credits)
    assert nonzero(report.hours) == {
        kw(2026, 3, 3, 23): (1, 1, 5, 0, 0),
        kw(2026, 3, 4, 1): (1, 0, 1, 2, 2),  # 22:30 UTC
        kw(2026, 3, 4, 8): (4, 1, 40, 50, 3),  # without a key
        kw(2026, 3, 4, 13): (2, 0, 17, 28, 3),
    }
    assert nonzero(report.days) == {
        kw(2026, 2, 3): (1, 0, 4, 4, 1),
        kw(2026, 2, 28): (1, 0, 1, 1, 1),
        kw(2026, 3, 1): (1, 0, 3, 3, 2),
        kw(2026, 3, 2): (1, 0, 2, 2, 2),
        kw(2026, 3, 3): (2, 2, 8, 1, 0),
        kw(2026, 3, 4): (7, 1, 58, 80, 8),  # with 22:30 UTC the day before
    }
    assert nonzero(report.weeks) == {
        kw(2026, 2, 2): (2, 0, 10, 10, 2),
        kw(2026, 2, 23): (2, 0, 4, 4, 3),
        kw(2026, 3, 2): (10, 3, 68, 83, 10),
    }
    assert nonzero(report.months) == {
        kw(2025, 4, 1): (1, 0, 1, 0, 1),
        kw(2026, 2, 1): (3, 0, 11, 11, 3),
        kw(2026, 3, 1): (11, 3, 71, 86, 12),
    }
    assert report.totals == Bucket(kw(2026, 2, 3), 13, 3, 76, 91, 14)
    assert report.totals.tokens == 167


def test_the_report_zone_is_a_parameter(seeded: Seeded) -> None:
    report = report_of(seeded.sessions, seeded.account_id, tz=ZoneInfo("UTC"))
    utc_day = datetime(2026, 3, 4, tzinfo=ZoneInfo("UTC"))
    assert report.days[-1] == Bucket(utc_day, 6, 1, 57, 78, 6)
    # 22:30 UTC stays on the 3rd.
    assert report.days[-2] == Bucket(utc_day - timedelta(days=1), 3, 2, 9, 3, 2)


def test_by_model_splits_local_and_cloud_over_the_30_days(seeded: Seeded) -> None:
    report = report_of(seeded.sessions, seeded.account_id)
    assert report.by_model == [
        ModelUsage(LLAMA, 6, 5, 1, 24, 28, 5),
        ModelUsage(GPT, 4, 4, 0, 40, 50, 3),
        ModelUsage(QWEN, 3, 0, 3, 12, 13, 6),
    ]


def test_by_key_names_deleted_keys_and_requests_without_a_key(seeded: Seeded) -> None:
    report = report_of(seeded.sessions, seeded.account_id)
    first, old = seeded.keys["first"], seeded.keys["old"]
    assert report.by_key == [
        KeyUsage(first, "first", seeded.prefixes["first"], False, 7, 26, 32, 9),
        KeyUsage(0, "", "", False, 4, 40, 50, 3),
        KeyUsage(old, "old", seeded.prefixes["old"], True, 2, 10, 9, 2),
    ]
    assert all(prefix.startswith("rsy-") for prefix in seeded.prefixes.values())


def test_another_accounts_usage_never_appears(seeded: Seeded) -> None:
    other = report_of(seeded.sessions, seeded.other_account_id)
    assert other.totals == Bucket(kw(2026, 2, 3), 3, 0, 18, 30, 5)
    assert [k.api_key_id for k in other.by_key] == [seeded.other_key_id]
    assert other.by_model == [
        ModelUsage(LLAMA, 2, 1, 1, 11, 22, 3),
        ModelUsage(QWEN, 1, 0, 1, 7, 8, 2),
    ]
    assert nonzero(other.hours) == {
        kw(2026, 3, 4, 1): (1, 0, 1, 2, 2),
        kw(2026, 3, 4, 13): (2, 0, 17, 28, 3),
    }


def test_an_account_without_usage_gets_every_bucket_as_zero_at_the_turn_of_the_year(
    sessions: Sessions,
) -> None:
    with sessions() as session, session.begin():
        _user_id, account_id = new_user(session)
    new_year = datetime(2025, 12, 31, 21, 30, tzinfo=UTC)  # 00:30 on 1 January in Kuwait
    report = report_of(sessions, account_id, now=new_year)
    assert (len(report.hours), len(report.days), len(report.weeks), len(report.months)) == (
        24,
        30,
        12,
        12,
    )
    assert (report.hours[-1].start, report.days[-1].start) == (kw(2026, 1, 1), kw(2026, 1, 1))
    assert (report.hours[0].start, report.days[0].start) == (kw(2025, 12, 31, 1), kw(2025, 12, 3))
    assert (report.weeks[-1].start, report.weeks[0].start) == (kw(2025, 12, 29), kw(2025, 10, 13))
    assert (report.months[-1].start, report.months[0].start) == (kw(2026, 1, 1), kw(2025, 2, 1))
    series = report.hours + report.days + report.weeks + report.months + [report.totals]
    assert {(b.requests, b.failed, b.tokens, b.credits) for b in series} == {(0, 0, 0, 0)}
    assert (report.by_model, report.by_key) == ([], [])


def test_now_must_carry_its_zone(sessions: Sessions) -> None:
    with sessions() as session, pytest.raises(ValueError, match="timezone-aware"):
        usage_report(session, account_id=1, now=datetime(2026, 3, 4), tz=KUWAIT)


def test_balance_is_what_remains_and_what_was_ever_granted_or_bought(sessions: Sessions) -> None:
    with sessions() as session, session.begin():
        _user, account_id = new_user(session, credits=50)
        _other_user, other_id = new_user(session, credits=1000)
        ledger.grant(session, account_id=account_id, amount=30, kind="purchase", reason="pack")
        ledger.grant(session, account_id=account_id, amount=-5, kind="adjust", reason="fix")
        ledger.reserve(session, account_id=account_id, request_id=uuid.uuid4().hex, price=2)
    with sessions() as session:
        assert balance(session, account_id=account_id) == Balance(remaining=73, total_granted=80)
        assert balance(session, account_id=other_id) == Balance(remaining=1000, total_granted=1000)
        with pytest.raises(NotFound):
            balance(session, account_id=other_id + 1_000_000)


def test_a_request_settled_while_the_report_is_read_shows_everywhere_or_nowhere(
    sessions: Sessions,
) -> None:
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's reads are one snapshot anyway (and lock out the settler)")
    with sessions() as session, session.begin():
        user_id, account_id = new_user(session)
        key_id, _prefix = new_key(session, account_id=account_id, user_id=user_id, label="k")
    row = ("a", datetime(2026, 3, 4, 9, 30), "k", LLAMA, "local", "ok", 1, 1, 1)
    with sessions() as session, session.begin():
        ledger.settle(session, [settlement(account_id, key_id, row)])
    settled_meanwhile: list[int] = []
    started: list[bool] = []

    def settle_another(*_args: object) -> None:
        if not started:  # right after the report's first statement, once
            started.append(True)
            with sessions() as session, session.begin():
                settled_meanwhile.append(
                    ledger.settle(session, [settlement(account_id, key_id, row)])
                )

    event.listen(engine, "after_cursor_execute", settle_another)
    try:
        report = report_of(sessions, account_id)
    finally:
        event.remove(engine, "after_cursor_execute", settle_another)
    assert settled_meanwhile == [1]
    seen = report.totals.requests
    assert seen in (1, 2)
    for series in (report.hours, report.days, report.weeks, report.months):
        assert sum(b.requests for b in series) == seen
    assert (
        sum(m.requests for m in report.by_model) == sum(k.requests for k in report.by_key) == seen
    )
    assert report_of(sessions, account_id).totals.requests == 2
