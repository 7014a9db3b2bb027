"""The dashboard scenario's data, made by PostgreSQL itself (generate_series), not row by row.

`accounts` accounts with `keys_per_account` keys each (one of the heavy account's keys
deleted); `rows` usage rows spread evenly over the last `days` days and written in time
order, as the settler writes them, `heavy_share` of them for the first (heavy) account
and the rest spread over the others; a reserve ledger row per request, a refund per
failed one, a grant per account and a monthly purchase for the heavy one. Then both
hourly rollups of all of it, built with INSERT ... SELECT ... GROUP BY, and
VACUUM ANALYZE, as autovacuum would have left the tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, text

# Requested model, its pool, its weight. A local model's request overflows to the
# cloud (and is counted in its cloud column) 8% of the time.
MODELS = (
    ("llama3.2:3b", "local", 30),
    ("qwen2.5-coder:14b", "local", 20),
    ("mistral-small3.2:24b", "local", 10),
    ("gpt-oss:20b", "local", 15),
    ("qwen3.5:cloud", "cloud", 15),
    ("deepseek-v3.2:cloud", "cloud", 10),
)
FAILOVER_SHARE = 0.08
KEYLESS_SHARE = 0.02  # rows whose key was removed for good (api_key_id NULL)
SEED = 0.42

_ACCOUNTS = """
INSERT INTO accounts (name, credit_balance, suspended, created_at)
SELECT 'bench-' || g || '@example.com', 1000000, false, now()
FROM generate_series(1, :accounts) AS g
"""
_KEYS = """
INSERT INTO api_keys (account_id, label, prefix, digest, created_at)
SELECT a.id, 'key ' || k, 'rsy-bench' || k, md5(a.id || '-' || k), now()
FROM accounts AS a CROSS JOIN generate_series(1, :keys) AS k
ORDER BY a.id, k
"""
_PICKS = """
CREATE TEMPORARY TABLE bench_keys AS
SELECT (dense_rank() OVER (ORDER BY account_id)) - 1 AS account_index,
       (row_number() OVER (PARTITION BY account_id ORDER BY id)) - 1 AS slot,
       account_id, id AS key_id
FROM api_keys;
CREATE TEMPORARY TABLE bench_models (name text, pool text, lo float8, hi float8);
"""
_USAGE = """
INSERT INTO usage_records (
    request_id, account_id, api_key_id, model_requested, model_served, pool,
    prompt_tokens, completion_tokens, credits_charged, queue_wait_ms, duration_ms,
    status, error_code, created_at
)
SELECT 'bench-' || p.g, k.account_id,
       CASE WHEN p.r_keyless < :keyless THEN NULL ELSE k.key_id END,
       m.name, CASE WHEN served.pool = m.pool THEN m.name ELSE 'qwen3.5:cloud' END,
       served.pool, p.prompt, CASE WHEN p.status = 'ok' THEN p.completion ELSE 0 END,
       CASE WHEN p.status <> 'ok' THEN 0 WHEN served.pool = 'cloud' THEN 2 ELSE 1 END,
       p.wait, p.duration, p.status,
       CASE p.status WHEN 'error' THEN 'upstream_error' WHEN 'cancelled' THEN 'client_closed' END,
       p.at
FROM (
    SELECT g,
           CASE WHEN random() < :heavy THEN 0
                ELSE 1 + floor(random() * (:accounts - 1))::int END AS account_index,
           floor(random() * :keys)::int AS slot,
           random() AS r_model, random() AS r_keyless, random() AS r_failover,
           CASE WHEN r < 0.95 THEN 'ok' WHEN r < 0.98 THEN 'error' ELSE 'cancelled' END AS status,
           20 + floor(random() * 2000)::int AS prompt,
           10 + floor(random() * 800)::int AS completion,
           floor(random() * 50)::int AS wait, 200 + floor(random() * 5000)::int AS duration,
           now() - make_interval(secs => :span_s * (1 - g::float8 / :rows)) AS at
    FROM (SELECT g, random() AS r FROM generate_series(1, :rows) AS g) AS numbered
) AS p
JOIN bench_keys AS k ON k.account_index = p.account_index AND k.slot = p.slot
JOIN bench_models AS m ON p.r_model >= m.lo AND p.r_model < m.hi
CROSS JOIN LATERAL (
    SELECT CASE WHEN m.pool = 'cloud' OR p.r_failover < :failover THEN 'cloud' ELSE 'local' END
) AS served (pool)
ORDER BY p.g
"""
_LEDGER = """
INSERT INTO credit_ledger (account_id, amount, balance_after, kind, request_id, reason, created_at)
SELECT account_id, -(CASE WHEN pool = 'cloud' THEN 2 ELSE 1 END), 0, 'reserve', request_id,
       'request admitted', created_at
FROM usage_records ORDER BY id;
INSERT INTO credit_ledger (account_id, amount, balance_after, kind, request_id, reason, created_at)
SELECT account_id, CASE WHEN pool = 'cloud' THEN 2 ELSE 1 END, 0, 'refund', request_id, status,
       created_at
FROM usage_records WHERE status <> 'ok' ORDER BY id;
INSERT INTO credit_ledger (account_id, amount, balance_after, kind, reason, created_at)
SELECT id, 1000000, 1000000, 'grant', 'initial credits', now() - interval '400 days'
FROM accounts;
INSERT INTO credit_ledger (account_id, amount, balance_after, kind, reason, created_at)
SELECT (SELECT min(id) FROM accounts), 50000, 0, 'purchase', 'credit pack',
       now() - make_interval(days => 30 * m)
FROM generate_series(0, 11) AS m
"""
# In time order, as settling writes them: an account's rows are spread over the table.
_ROLLUPS = """
INSERT INTO usage_hourly (
    account_id, hour, api_key_id, model, pool,
    requests, failed, prompt_tokens, completion_tokens, credits
)
SELECT account_id, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       coalesce(api_key_id, 0), model_requested, pool,
       count(*), count(*) FILTER (WHERE status <> 'ok'),
       sum(prompt_tokens), sum(completion_tokens), sum(credits_charged)
FROM usage_records
GROUP BY 1, 2, 3, 4, 5
ORDER BY 2, 1, 3, 4, 5;
INSERT INTO usage_hourly_totals (
    account_id, hour, requests, failed, prompt_tokens, completion_tokens, credits
)
SELECT account_id, hour, sum(requests), sum(failed), sum(prompt_tokens),
       sum(completion_tokens), sum(credits)
FROM usage_hourly
GROUP BY 1, 2
ORDER BY 2, 1
"""


@dataclass(frozen=True)
class Seeded:
    heavy_account_id: int
    rows: int
    heavy_rows: int
    ledger_rows: int
    rollup_rows: int
    heavy_rollup_rows: int
    total_rows: int
    heavy_total_rows: int
    seed_s: float
    rollup_s: float
    vacuum_s: float


def seed(
    engine: Engine,
    *,
    rows: int,
    days: int,
    accounts: int,
    keys_per_account: int,
    heavy_share: float,
) -> Seeded:
    started = time.monotonic()
    with engine.begin() as connection:
        connection.execute(text("SELECT setseed(:seed)"), {"seed": SEED})
        connection.execute(text(_ACCOUNTS), {"accounts": accounts})
        connection.execute(text(_KEYS), {"keys": keys_per_account})
        connection.exec_driver_sql(_PICKS)
        connection.execute(
            text("INSERT INTO bench_models VALUES (:name, :pool, :lo, :hi)"), _model_rows()
        )
        connection.execute(
            text(_USAGE),
            {
                "rows": rows,
                "accounts": accounts,
                "keys": keys_per_account,
                "heavy": heavy_share,
                "failover": FAILOVER_SHARE,
                "keyless": KEYLESS_SHARE,
                "span_s": days * 86400.0,
            },
        )
        for statement in _LEDGER.split(";"):
            connection.exec_driver_sql(statement)
        heavy = int(connection.execute(text("SELECT min(id) FROM accounts")).scalar_one())
        # One of the heavy account's keys was deleted; its usage still shows, by label.
        connection.execute(
            text(
                "UPDATE api_keys SET deleted_at = now() WHERE id = "
                "(SELECT max(id) FROM api_keys WHERE account_id = :account)"
            ),
            {"account": heavy},
        )
    seeded_at = time.monotonic()
    with engine.begin() as connection:
        for statement in _ROLLUPS.split(";"):
            connection.exec_driver_sql(statement)
    rolled_up_at = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    vacuumed_at = time.monotonic()
    with engine.connect() as connection:
        counts = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM usage_records),"
                " (SELECT count(*) FROM usage_records WHERE account_id = :a),"
                " (SELECT count(*) FROM credit_ledger),"
                " (SELECT count(*) FROM usage_hourly),"
                " (SELECT count(*) FROM usage_hourly WHERE account_id = :a),"
                " (SELECT count(*) FROM usage_hourly_totals),"
                " (SELECT count(*) FROM usage_hourly_totals WHERE account_id = :a)"
            ),
            {"a": heavy},
        ).one()
    total, heavy_rows, ledger, rollups, heavy_rollups, totals, heavy_totals = (
        int(count) for count in counts
    )
    return Seeded(
        heavy_account_id=heavy,
        rows=total,
        heavy_rows=heavy_rows,
        ledger_rows=ledger,
        rollup_rows=rollups,
        heavy_rollup_rows=heavy_rollups,
        total_rows=totals,
        heavy_total_rows=heavy_totals,
        seed_s=seeded_at - started,
        rollup_s=rolled_up_at - seeded_at,
        vacuum_s=vacuumed_at - rolled_up_at,
    )


def _model_rows() -> list[dict[str, object]]:
    """Each model's slice of [0, 1), as wide as its weight."""
    total = sum(weight for _name, _pool, weight in MODELS)
    rows, lo = [], 0.0
    for name, pool, weight in MODELS:
        rows.append({"name": name, "pool": pool, "lo": lo, "hi": lo + weight / total})
        lo += weight / total
    rows[-1]["hi"] = 2.0  # rounding must not leave random() < 1 without a model
    return rows
