"""Figures and checks of the overload scenario: per tier and pool, the books, the table."""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from bench.overload import TIERS, Outcome, OverloadRun, Row, Sample
from bench.report import percentile

TIMELINE_STEP_S = 2.0


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) if values else math.nan


@dataclass(frozen=True)
class TierFigures:
    tier: str
    sent: int
    ok: int
    cloud: int  # complete answers served by the cloud pool (per the usage rows)
    wait_p50_ms: float  # queue wait of the complete answers, from the usage rows
    wait_p99_ms: float
    wait_max_ms: float
    ttft_p50_ms: float  # streaming answers, client side
    ttft_p99_ms: float
    total_p50_ms: float  # complete answers, client side, send to last byte
    total_p99_ms: float
    statuses: dict[str, int]
    lost: int

    @property
    def cloud_share(self) -> float:
        return self.cloud / self.ok if self.ok else math.nan

    @classmethod
    def of(cls, tier: str, outcomes: list[Outcome], rows: dict[str, Row]) -> TierFigures:
        ok = [o for o in outcomes if o.kind == "ok"]
        served = [rows[o.request_id] for o in ok if o.request_id in rows]
        waits = [float(r.queue_wait_ms) for r in served]
        ttft = [o.ttft_s * 1000 for o in ok if o.ttft_s is not None]
        total = [o.total_s * 1000 for o in ok if o.total_s is not None]
        return cls(
            tier=tier,
            sent=len(outcomes),
            ok=len(ok),
            cloud=sum(1 for r in served if r.pool == "cloud"),
            wait_p50_ms=_ms(waits, 50),
            wait_p99_ms=_ms(waits, 99),
            wait_max_ms=max(waits, default=math.nan),
            ttft_p50_ms=_ms(ttft, 50),
            ttft_p99_ms=_ms(ttft, 99),
            total_p50_ms=_ms(total, 50),
            total_p99_ms=_ms(total, 99),
            statuses=dict(sorted(Counter(o.label() for o in outcomes).items())),
            lost=sum(1 for o in outcomes if o.kind == "lost"),
        )


@dataclass(frozen=True)
class PoolFigures:
    tier: str
    pool: str
    served: int
    wait_p50_ms: float
    wait_p99_ms: float
    wait_max_ms: float
    total_p50_ms: float
    total_p99_ms: float
    outside_p50_ms: float  # total - queue wait - generation: admission and relay
    outside_p99_ms: float


def pool_figures(tier: str, outcomes: list[Outcome], rows: dict[str, Row]) -> list[PoolFigures]:
    found: list[PoolFigures] = []
    for pool in ("local", "cloud"):
        pairs = [
            (o, rows[o.request_id])
            for o in outcomes
            if o.kind == "ok" and o.request_id in rows and rows[o.request_id].pool == pool
        ]
        if not pairs:
            continue
        waits = [float(r.queue_wait_ms) for _, r in pairs]
        total = [o.total_s * 1000 for o, _ in pairs if o.total_s is not None]
        outside = [
            o.total_s * 1000 - r.queue_wait_ms - r.duration_ms
            for o, r in pairs
            if o.total_s is not None
        ]
        found.append(
            PoolFigures(
                tier=tier,
                pool=pool,
                served=len(pairs),
                wait_p50_ms=_ms(waits, 50),
                wait_p99_ms=_ms(waits, 99),
                wait_max_ms=max(waits),
                total_p50_ms=_ms(total, 50),
                total_p99_ms=_ms(total, 99),
                outside_p50_ms=_ms(outside, 50),
                outside_p99_ms=_ms(outside, 99),
            )
        )
    return found


@dataclass(frozen=True)
class OverloadChecks:
    sent: int  # measured + warm-up
    lost: int  # neither a complete answer nor a clear error
    admitted: int  # requests the client saw a request id for (they reached the queue)
    rows: int
    missing_rows: int  # admitted, but no usage row
    orphan_rows: int  # a usage row whose response the client never saw complete
    disagreements: list[str]  # the client and the books tell different stories
    unbalanced: list[str]  # accounts whose balance != sum(ledger) != initial - charged
    basic_in_cloud: int  # Basic's plan has no cloud model: must be 0
    header_waits: int  # non-streaming answers whose x-resayil-queue-wait-ms was compared
    header_wait_mismatches: int
    cloud_budget_used: int
    cloud_rows_charged: int

    @property
    def sound(self) -> bool:
        return (
            self.lost == 0
            and self.missing_rows == 0
            and not self.disagreements
            and not self.unbalanced
        )


def _disagreement(outcome: Outcome, row: Row, prices: dict[str, int]) -> str | None:
    where = f"request {row.request_id} ({outcome.arrival.tier})"
    if outcome.kind == "ok":
        if row.status != "ok":
            return f"{where}: complete answer, usage row {row.status}/{row.error_code}"
        if outcome.served_by != row.pool:
            return f"{where}: header says {outcome.served_by}, usage row says {row.pool}"
        if outcome.model != row.model_served:
            return f"{where}: answer's model {outcome.model}, usage row {row.model_served}"
        if row.credits_charged != prices.get(row.pool):
            return f"{where}: charged {row.credits_charged} for a {row.pool} answer"
    elif outcome.kind == "error" and (row.status == "ok" or row.credits_charged):
        charged = row.credits_charged
        return f"{where}: error {outcome.detail}, usage row {row.status} charged {charged}"
    return None


def checks(run: OverloadRun) -> OverloadChecks:
    everything = run.warmup + run.outcomes
    rows = {r.request_id: r for r in run.rows}
    admitted = [o for o in everything if o.request_id is not None]
    seen_complete = {o.request_id for o in admitted if o.kind != "lost"}
    disagreements = [
        text
        for o in admitted
        if o.request_id in rows and (text := _disagreement(o, rows[o.request_id], run.prices))
    ]
    compared = [
        (o.header_wait_ms, rows[o.request_id].queue_wait_ms)
        for o in admitted
        if o.kind == "ok" and o.header_wait_ms is not None and o.request_id in rows
    ]
    return OverloadChecks(
        sent=len(everything),
        lost=sum(1 for o in everything if o.kind == "lost"),
        admitted=len(admitted),
        rows=len(run.rows),
        missing_rows=sum(1 for o in admitted if o.request_id not in rows),
        orphan_rows=sum(1 for r in run.rows if r.request_id not in seen_complete),
        disagreements=disagreements,
        unbalanced=[
            f"account {b.account_id} ({b.tier}): balance {b.balance}, sum(ledger) "
            f"{b.ledger_sum}, initial - charged {b.initial - b.charged}"
            for b in run.books
            if not b.balanced
        ],
        basic_in_cloud=sum(
            1 for r in run.rows if r.pool == "cloud" and run.tier_of[r.account_id] == "basic"
        ),
        header_waits=len(compared),
        header_wait_mismatches=sum(1 for header, row in compared if header != row),
        cloud_budget_used=run.cloud_budget_used,
        cloud_rows_charged=sum(1 for r in run.rows if r.pool == "cloud" and r.credits_charged),
    )


# --- printing ----------------------------------------------------------------------


def _f(value: float, width: int) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.0f}"


HEADER = (
    f"{'tier':<10} {'sent':>5} {'ok':>5} {'cloud':>6} {'wait p50':>9} {'wait p99':>9} "
    f"{'wait max':>9} {'ttft p50':>9} {'ttft p99':>9} {'total p50':>10} {'total p99':>10} "
    f"{'lost':>5}  statuses"
)
POOL_HEADER = (
    f"{'tier':<10} {'pool':<5} {'served':>6} {'wait p50':>9} {'wait p99':>9} {'wait max':>9} "
    f"{'total p50':>10} {'total p99':>10} {'other p50':>10} {'other p99':>10}"
)


def tier_table(figures: list[TierFigures]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    for f in figures:
        share = "-" if math.isnan(f.cloud_share) else f"{f.cloud_share:.0%}"
        statuses = ", ".join(f"{label} x{n}" for label, n in f.statuses.items())
        lines.append(
            f"{f.tier:<10} {f.sent:>5} {f.ok:>5} {share:>6} {_f(f.wait_p50_ms, 9)} "
            f"{_f(f.wait_p99_ms, 9)} {_f(f.wait_max_ms, 9)} {_f(f.ttft_p50_ms, 9)} "
            f"{_f(f.ttft_p99_ms, 9)} {_f(f.total_p50_ms, 10)} {_f(f.total_p99_ms, 10)} "
            f"{f.lost:>5}  {statuses}"
        )
    return "\n".join(lines)


def pool_table(figures: list[PoolFigures]) -> str:
    lines = [POOL_HEADER, "-" * len(POOL_HEADER)]
    for f in figures:
        lines.append(
            f"{f.tier:<10} {f.pool:<5} {f.served:>6} {_f(f.wait_p50_ms, 9)} "
            f"{_f(f.wait_p99_ms, 9)} {_f(f.wait_max_ms, 9)} {_f(f.total_p50_ms, 10)} "
            f"{_f(f.total_p99_ms, 10)} {_f(f.outside_p50_ms, 10)} {_f(f.outside_p99_ms, 10)}"
        )
    lines.append("(other = total - queue wait - generation: admission before the queue, and relay)")
    return "\n".join(lines)


def nearest(samples: list[Sample], at_s: float) -> Sample:
    return min(samples, key=lambda sample: abs(sample.at_s - at_s))


def timeline(run: OverloadRun) -> str:
    """Queue depth (waiting jobs) per pool every `TIMELINE_STEP_S`, from the samples."""
    if not run.samples:
        return "(no queue samples)"
    marks: list[float] = []
    mark = 0.0
    while mark <= run.samples[-1].at_s:
        marks.append(mark)
        mark += TIMELINE_STEP_S
    picked = [nearest(run.samples, m) for m in marks]
    width = max(4, *(len(str(s.local_queued)) + 1 for s in picked))
    rows = [
        "t (s)      " + "".join(f"{m:>{width}.0f}" for m in marks),
        "local queue" + "".join(f"{s.local_queued:>{width}}" for s in picked),
        "cloud queue" + "".join(f"{s.cloud_queued:>{width}}" for s in picked),
    ]
    return "\n".join(rows)


def summary(run: OverloadRun) -> list[str]:
    config = run.config
    outcomes = run.outcomes
    rows = {r.request_id: r for r in run.rows}
    lags = [o.lag_s * 1000 for o in outcomes if not math.isnan(o.lag_s)]
    lines = [
        f"arrivals: {len(outcomes)} in {config.duration_s:g} s = "
        f"{len(outcomes) / config.duration_s:.1f} req/s (offered {config.offered_rps:.1f}); "
        f"sent late by p50 {_ms(lags, 50):.1f} ms, p99 {_ms(lags, 99):.1f} ms, "
        f"max {max(lags, default=math.nan):.1f} ms"
    ]
    for pool in ("local", "cloud"):
        done = [
            o.done_at_s
            for o in outcomes
            if o.kind == "ok"
            and o.done_at_s is not None
            and o.request_id in rows
            and rows[o.request_id].pool == pool
        ]
        if done:
            last = max(done)
            lines.append(
                f"{pool} pool: {len(done)} answers, the last at {last:.1f} s: "
                f"{len(done) / last:.1f} req/s"
                + (
                    f" (nominal capacity {config.capacity_rps:.1f})"
                    if pool == "local"
                    else f" ({config.cloud_slots} slots)"
                )
            )
    durations = [float(r.duration_ms) for r in run.rows if r.pool == "local" and r.status == "ok"]
    if durations:
        lines.append(
            f"a local generation took p50 {_ms(durations, 50):.0f} ms, p99 "
            f"{_ms(durations, 99):.0f} ms (claim to finish, per the usage rows; "
            f"{config.job_s * 1000:.0f} ms of token delays)"
        )
    if run.samples:
        peak = max(run.samples, key=lambda s: s.local_queued)
        lines.append(
            f"local queue peak {peak.local_queued} at {peak.at_s:.1f} s; "
            f"cloud queue peak {max(s.cloud_queued for s in run.samples)}; "
            f"last answer {run.wall_s - config.duration_s:.1f} s after the arrivals stopped"
        )
    return lines


def account_lines(run: OverloadRun, rows: dict[str, Row]) -> list[str]:
    """Fairness within a tier: each account's requests and its p50/p99 queue wait."""
    lines = []
    accounts = sorted({o.arrival.account for o in run.outcomes})
    for tier in TIERS:
        parts = []
        for account in accounts:
            mine = [
                o for o in run.outcomes if o.arrival.tier == tier and o.arrival.account == account
            ]
            waits = [
                float(rows[o.request_id].queue_wait_ms)
                for o in mine
                if o.kind == "ok" and o.request_id in rows
            ]
            if mine:
                parts.append(f"{len(mine)} req {_f(_ms(waits, 50), 0)}/{_f(_ms(waits, 99), 0)}")
        if parts:
            lines.append(f"{tier + ' accounts':<19} " + " | ".join(parts))
    head_start = int(run.settings["TIER_HEAD_START_MS"]) / 1000
    clocks = "; ".join(
        f"{tier} " + " ".join(f"{ahead:+.0f}" for ahead in run.clocks_ahead_s.get(tier, []))
        for tier in TIERS
        if tier in run.clocks_ahead_s
    )
    return [
        "per account: requests, queue wait p50/p99 (ms)",
        *lines,
        f"fair-share push-back of each account's latest local job when the arrivals stopped, "
        f"s: {clocks} (the head start is {head_start:g} s per tier)",
    ]


TIER_RANK = {tier: rank for rank, tier in enumerate(TIERS, start=1)}  # the plans' `tier`
ORDER_MARGIN_S = 0.5  # enqueue times are the client's send times: allow for admission


@dataclass(frozen=True)
class Overtaken:
    tier: str  # the higher tier, whose jobs were overtaken
    by: str  # the lower tier
    jobs: int  # the higher tier's local jobs overtaken at least once
    of: int  # the higher tier's local jobs
    worst_s: float  # the longest a job started after one that should have followed it


def overtaken(run: OverloadRun, rows: dict[str, Row]) -> list[Overtaken]:
    """Local jobs started while a higher-tier job waited, although the documented order
    (score = enqueue time - tier x TIER_HEAD_START_MS) puts them after it."""
    head_start = int(run.settings["TIER_HEAD_START_MS"]) / 1000
    local: dict[str, list[tuple[float, float]]] = {tier: [] for tier in TIERS}
    for o in run.outcomes:
        row = rows.get(o.request_id or "")
        if o.kind == "ok" and row is not None and row.pool == "local":
            enqueued = o.arrival.at_s + o.lag_s
            local[o.arrival.tier].append((enqueued, enqueued + row.queue_wait_ms / 1000))
    found = []
    for high, low in (("enterprise", "pro"), ("enterprise", "basic"), ("pro", "basic")):
        if not local[high] or not local[low]:
            continue
        steps = (TIER_RANK[high] - TIER_RANK[low]) * head_start
        jobs, worst = 0, 0.0
        for enqueued, started in local[high]:
            passed = [
                started - other_start
                for other_enqueued, other_start in local[low]
                if other_enqueued > enqueued - steps + ORDER_MARGIN_S
                and enqueued + ORDER_MARGIN_S < other_start < started - ORDER_MARGIN_S
            ]
            if passed:
                jobs += 1
                worst = max(worst, *passed)
        found.append(Overtaken(high, low, jobs, len(local[high]), worst))
    return found


def order_line(found: list[Overtaken]) -> str:
    parts = [
        f"{o.tier} by {o.by} {o.jobs} of {o.of}"
        + (f" (worst by {o.worst_s:.1f} s)" if o.jobs else "")
        for o in found
    ]
    return (
        "local jobs overtaken while waiting by a lower tier's job that the documented order "
        f"(enqueue - tier x head start; enqueue = send time, {ORDER_MARGIN_S:g} s margin) "
        f"puts after them: {'; '.join(parts) or 'none compared'}"
    )


def books_lines(c: OverloadChecks, run: OverloadRun) -> list[str]:
    lines = [
        f"books: {c.sent} requests sent ({len(run.warmup)} warm-up), {c.admitted} admitted, "
        f"{c.rows} usage rows (settled {run.settle_wait_s:.2f} s after the last answer); "
        f"missing rows {c.missing_rows}, rows for responses the client lost {c.orphan_rows}; "
        f"{len(run.books)} accounts, {len(run.books) - len(c.unbalanced)} with "
        f"balance == sum(ledger) == initial - charged",
        f"cloud budget: counter {c.cloud_budget_used} of cap {run.config.cloud_cap}, "
        f"charged cloud rows {c.cloud_rows_charged}, admin alerts "
        f"{', '.join(run.alerts) or 'none'}; Basic rows in the cloud {c.basic_in_cloud}; "
        f"x-resayil-queue-wait-ms equals the row's queue_wait_ms for "
        f"{c.header_waits - c.header_wait_mismatches} of {c.header_waits} non-streaming answers",
    ]
    for text in c.disagreements[:10]:
        lines.append(f"DISAGREEMENT {text}")
    for text in c.unbalanced[:10]:
        lines.append(f"LEDGER MISMATCH {text}")
    if c.cloud_budget_used != c.cloud_rows_charged:
        lines.append("WARNING: the cloud budget counter differs from the charged cloud rows")
    if c.basic_in_cloud:
        lines.append("WARNING: Basic requests were served by a cloud model")
    lost = [o for o in run.warmup + run.outcomes if o.kind == "lost"]
    for detail, n in Counter(o.detail for o in lost).most_common(5):
        lines.append(f"LOST x{n}: {detail}")
    lines.append(f"lost: {c.lost}")
    return lines


def heading(run: OverloadRun) -> str:
    config, s = run.config, run.settings
    mix = " / ".join(f"{tier} {weight:.0%}" for tier, weight in config.mix)
    return (
        f"resayil overload: {os.cpu_count()} cores (load average {run.load_before:.1f} before, "
        f"{run.load_after:.1f} after); simulator {config.tokens} tokens x "
        f"{config.token_delay_ms:g} ms (a local job {config.job_s * 1000:.0f} ms), "
        f"LOCAL_SLOTS {config.local_slots}: local capacity {config.capacity_rps:.1f} req/s; "
        f"offered {config.factor:g}x = {config.offered_rps:.1f} req/s for "
        f"{config.duration_s:g} s, Poisson arrivals (seed {config.seed}), mix {mix}, "
        f"{config.accounts_per_tier} accounts per tier (rpm_override 0), "
        f"{config.stream_share:.0%} streaming; "
        + ", ".join(f"{k} {v}" for k, v in s.items())
        + "; waits from the usage rows, ttft/total at the client; times in ms"
    )


def report(run: OverloadRun) -> tuple[str, OverloadChecks, dict[str, Any]]:
    """The printed text, the checks, and the JSON document."""
    rows = {r.request_id: r for r in run.rows}
    tiers = [t for t in TIERS if any(o.arrival.tier == t for o in run.outcomes)]
    figures = [
        TierFigures.of(t, [o for o in run.outcomes if o.arrival.tier == t], rows) for t in tiers
    ]
    figures.append(TierFigures.of("all", run.outcomes, rows))
    pools = [
        p
        for t in tiers
        for p in pool_figures(t, [o for o in run.outcomes if o.arrival.tier == t], rows)
    ]
    c = checks(run)
    text = "\n\n".join(
        [
            heading(run),
            tier_table(figures),
            pool_table(pools),
            "\n".join(summary(run)),
            "\n".join([*account_lines(run, rows), order_line(overtaken(run, rows))]),
            timeline(run),
            "\n".join(books_lines(c, run)),
        ]
    )
    document = {
        "config": asdict(run.config) | {"capacity_rps": run.config.capacity_rps},
        "settings": run.settings,
        "load_average": [run.load_before, run.load_after],
        "tiers": [asdict(f) | {"cloud_share": f.cloud_share} for f in figures],
        "pools": [asdict(p) for p in pools],
        "overtaken": [asdict(o) for o in overtaken(run, rows)],
        "checks": asdict(c) | {"sound": c.sound},
        "alerts": run.alerts,
        "clocks_ahead_s": run.clocks_ahead_s,
        "queue_samples": [asdict(s) for s in run.samples],
        "requests": [
            asdict(o) | {"row": asdict(rows[o.request_id]) if o.request_id in rows else None}
            for o in run.outcomes
        ],
    }
    return text, c, document
