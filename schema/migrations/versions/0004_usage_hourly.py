"""hourly usage rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 09:00:00.000000

Creates `usage_hourly` (per account, UTC hour, key, model and pool) and
`usage_hourly_totals` (per account and UTC hour) and fills them from the usage rows
already written, in one INSERT ... SELECT ... GROUP BY each (per dialect, only the hour
expression differs).
Settlers must not run while this runs: a usage row written by the old code after
the SELECT's snapshot would have no rollup.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_hourly",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("api_key_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("pool", sa.String(length=8), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_usage_hourly_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "hour", "api_key_id", "model", "pool", name=op.f("pk_usage_hourly")
        ),
    )
    op.create_table(
        "usage_hourly_totals",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_usage_hourly_totals_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "hour", name=op.f("pk_usage_hourly_totals")),
    )
    with op.batch_alter_table("usage_hourly_totals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_hourly_totals_covering",
            [
                "account_id",
                "hour",
                "requests",
                "failed",
                "prompt_tokens",
                "completion_tokens",
                "credits",
            ],
            unique=False,
        )
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_credit_ledger_account_kind", ["account_id", "kind"], unique=False)
    backfill()


def backfill() -> None:
    usage = sa.table(
        "usage_records",
        sa.column("account_id", sa.Integer()),
        sa.column("api_key_id", sa.Integer()),
        sa.column("model_requested", sa.String()),
        sa.column("pool", sa.String()),
        sa.column("prompt_tokens", sa.Integer()),
        sa.column("completion_tokens", sa.Integer()),
        sa.column("credits_charged", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    counts = ("requests", "failed", "prompt_tokens", "completion_tokens", "credits")
    hourly = sa.table(
        "usage_hourly",
        *(sa.column(name) for name in ("account_id", "hour", "api_key_id", "model", "pool")),
        *(sa.column(name) for name in counts),
    )
    totals = sa.table(
        "usage_hourly_totals",
        *(sa.column(name) for name in ("account_id", "hour", *counts)),
    )
    hour = _utc_hour(usage.c.created_at)
    key = sa.func.coalesce(usage.c.api_key_id, 0)
    grouped = sa.select(
        usage.c.account_id,
        hour,
        key,
        usage.c.model_requested,
        usage.c.pool,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((usage.c.status != "ok", 1), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(usage.c.prompt_tokens), 0),
        sa.func.coalesce(sa.func.sum(usage.c.completion_tokens), 0),
        sa.func.coalesce(sa.func.sum(usage.c.credits_charged), 0),
    ).group_by(usage.c.account_id, hour, key, usage.c.model_requested, usage.c.pool)
    op.execute(hourly.insert().from_select(list(hourly.c.keys()), grouped))
    summed = sa.select(
        hourly.c.account_id,
        hourly.c.hour,
        *(sa.func.sum(hourly.c[name]) for name in counts),
    ).group_by(hourly.c.account_id, hourly.c.hour)
    op.execute(totals.insert().from_select(list(totals.c.keys()), summed))


def _utc_hour(created_at: sa.ColumnElement[object]) -> sa.ColumnElement[object]:
    if op.get_bind().dialect.name == "postgresql":
        # date_trunc on a timestamptz cuts in the session's time zone; cut in UTC.
        utc = sa.func.timezone("UTC", created_at)
        return sa.func.timezone("UTC", sa.func.date_trunc("hour", utc))
    # SQLite keeps SQLAlchemy's text form, 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC;
    # strftime reads it (or any ISO form) and writes the hour in that same form.
    return sa.func.strftime("%Y-%m-%d %H:00:00.000000", created_at)


def downgrade() -> None:
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_ledger_account_kind")

    with op.batch_alter_table("usage_hourly_totals", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_hourly_totals_covering")

    op.drop_table("usage_hourly_totals")
    op.drop_table("usage_hourly")
