"""`python -m bench [--scenario all|compare|overload|dashboard|ab] [--json PATH] [options]`.

Three scenarios, each on its own fresh PostgreSQL (the first two also on their own Redis,
simulator, api and dispatcher):

compare   the same streaming load directly against the simulator and through the
          gateway, level by level and round by round (direct, gateway, direct,
          gateway...) so drift hits both; prints the figures and their ratios.
overload  open-loop arrivals at 3x local capacity over Basic, Pro and Enterprise
          accounts with failover on; prints per-tier queue waits, the share served
          by the cloud and the requests lost.
dashboard 2,000,000 usage rows seeded by SQL; times one heavy account's usage report
          and balance from the rollups against the same aggregation from the raw rows
          (about a minute, mostly seeding). Alone:
          `.venv/bin/python -m bench --scenario dashboard [--dashboard-rows N]`.
ab        not part of `all`: this checkout's c=1 time to first token against another
          revision's (`--baseline REV`), both systems up at once, in alternating small
          rounds, so the machine's drift hits both (see bench/ab.py).

compare and overload then prove the books: one usage row per admitted request and
balance == sum(ledger); dashboard checks the report against the raw rows. Exits 1 only
when something is lost, the books are wrong or the report disagrees with the raw rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvloop

from bench.ab import run_ab
from bench.cpu import CpuMeter, cpu_line
from bench.dashboard import DashboardConfig, run_dashboard
from bench.dashboard import report as dashboard_report
from bench.load import CLIENTS, LevelRun, Target, make_client, run_level
from bench.overload import TIERS, OverloadConfig, run_overload
from bench.overload_report import report as overload_report
from bench.report import Figures, Ratio, table, targets, write_json
from bench.system import Books, check_books, running_stack

CREDITS = 10_000_000
SIM_MIN_PARALLEL = 64
OWN_FLAGS = {
    "LOCAL_SLOTS": "--local-slots",
    "CLOUD_SLOTS": "--cloud-slots",
    "CLOUD_DAILY_CAP": "--cloud-cap",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--concurrency",
        default="1,32",
        type=lambda text: sorted({int(part) for part in text.split(",") if part.strip()}),
        help="comma-separated concurrency levels (default 1,32)",
    )
    parser.add_argument(
        "--requests", type=int, default=1000, help="requests per level and target (default 1000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="alternate direct/gateway this often per level"
    )
    parser.add_argument(
        "--warmup", type=int, default=100, help="untimed requests per target first (default 100)"
    )
    parser.add_argument(
        "--failover",
        action="store_true",
        help="let a backed-up local queue overflow to the cloud fallback (the product default)",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="lean",
        help="the load client for compare and ab: lean (default; an asyncio protocol with "
        "httptools' parser, little CPU taken from the system measured) or httpx",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    parser.add_argument(
        "--scenario",
        choices=("all", "compare", "overload", "dashboard", "ab"),
        default="all",
        help="compare: gateway vs direct; overload: 3x local capacity, mixed tiers; dashboard: "
        "usage report over millions of usage rows; ab: this checkout against --baseline "
        "(default all, which leaves out ab)",
    )
    ab = parser.add_argument_group("ab scenario")
    ab.add_argument("--baseline", help="the git revision to compare this checkout with")
    ab.add_argument("--ab-rounds", type=int, default=20, help="rounds per system (default 20)")
    ab.add_argument("--ab-requests", type=int, default=100, help="requests per round (default 100)")
    defaults = OverloadConfig()
    overload = parser.add_argument_group("overload scenario")
    overload.add_argument(
        "--overload-seconds",
        type=float,
        default=defaults.duration_s,
        help=f"how long requests arrive (default {defaults.duration_s:g})",
    )
    overload.add_argument(
        "--overload-factor",
        type=float,
        default=defaults.factor,
        help=f"offered load as a multiple of local capacity (default {defaults.factor:g})",
    )
    overload.add_argument(
        "--token-delay-ms",
        type=float,
        default=defaults.token_delay_ms,
        help=f"the simulator's delay per token; 32 tokens per answer "
        f"(default {defaults.token_delay_ms:g})",
    )
    overload.add_argument(
        "--local-slots", type=int, default=defaults.local_slots, help="LOCAL_SLOTS (default 4)"
    )
    overload.add_argument(
        "--cloud-slots", type=int, default=defaults.cloud_slots, help="CLOUD_SLOTS (default 8)"
    )
    overload.add_argument(
        "--cloud-cap",
        type=int,
        default=defaults.cloud_cap,
        help=f"CLOUD_DAILY_CAP (default {defaults.cloud_cap}: more than the run can use; "
        "the product's default is 500)",
    )
    overload.add_argument(
        "--mix",
        type=parse_mix,
        default=defaults.mix,
        help="arrival weights per plan (default basic=5,pro=3,enterprise=2)",
    )
    overload.add_argument(
        "--accounts-per-tier",
        type=int,
        default=defaults.accounts_per_tier,
        help=f"(default {defaults.accounts_per_tier})",
    )
    overload.add_argument(
        "--stream-share",
        type=float,
        default=defaults.stream_share,
        help=f"share of streaming requests (default {defaults.stream_share:g})",
    )
    overload.add_argument("--seed", type=int, default=defaults.seed, help="arrival RNG seed")
    overload.add_argument(
        "--set",
        dest="extra_env",
        action="append",
        default=[],
        type=parse_setting,
        metavar="NAME=VALUE",
        help="another setting for the api and dispatcher, e.g. MAX_QUEUED_JOBS=200 (repeatable)",
    )
    add_dashboard_arguments(parser)
    args = parser.parse_args(argv)
    if min(args.dashboard_rows, args.dashboard_days, args.dashboard_runs) < 1:
        parser.error("dashboard settings must be at least 1")
    if args.scenario == "ab" and not args.baseline:
        parser.error("--scenario ab needs --baseline REV")
    if min(args.ab_rounds, args.ab_requests) < 1:
        parser.error("ab rounds and requests must be at least 1")
    if not args.concurrency or min(args.concurrency) < 1 or not 1 <= args.rounds <= args.requests:
        parser.error("need concurrency levels >= 1 and at least one request per round")
    if (
        min(args.overload_seconds, args.overload_factor, args.token_delay_ms) <= 0
        or min(args.local_slots, args.cloud_slots, args.accounts_per_tier) < 1
        or args.cloud_cap < 0
        or not 0 <= args.stream_share <= 1
    ):
        parser.error("overload settings must be positive (cloud cap >= 0, stream share 0..1)")
    return args


def add_dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DashboardConfig()
    dashboard = parser.add_argument_group("dashboard scenario")
    dashboard.add_argument(
        "--dashboard-rows",
        type=int,
        default=defaults.rows,
        help=f"usage rows to seed (default {defaults.rows:,})",
    )
    dashboard.add_argument(
        "--dashboard-days",
        type=int,
        default=defaults.days,
        help=f"spread over this many days up to now (default {defaults.days})",
    )
    dashboard.add_argument(
        "--dashboard-runs",
        type=int,
        default=defaults.runs,
        help=f"timed reports from the rollups (default {defaults.runs}; "
        f"{defaults.raw_runs} from the raw rows)",
    )


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """`basic=5,pro=3,enterprise=2` -> weights normalised to shares."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in TIERS or not value:
            raise argparse.ArgumentTypeError(f"expected plan=weight with plans {TIERS}: {part!r}")
        weights[name.strip()] = float(value)
    total = sum(weights.values())
    if total <= 0 or min(weights.values()) < 0:
        raise argparse.ArgumentTypeError("weights must be >= 0 and not all 0")
    return tuple((tier, weights[tier] / total) for tier in TIERS if weights.get(tier))


def parse_setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip().upper()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE: {text!r}")
    if name in OWN_FLAGS:
        raise argparse.ArgumentTypeError(f"{name} has its own flag: {OWN_FLAGS[name]}")
    return name, value


def overload_config(args: argparse.Namespace) -> OverloadConfig:
    return OverloadConfig(
        local_slots=args.local_slots,
        cloud_slots=args.cloud_slots,
        token_delay_ms=args.token_delay_ms,
        factor=args.overload_factor,
        duration_s=args.overload_seconds,
        mix=args.mix,
        accounts_per_tier=args.accounts_per_tier,
        cloud_cap=args.cloud_cap,
        stream_share=args.stream_share,
        seed=args.seed,
        extra_env=tuple(args.extra_env),
    )


def merge(runs: list[LevelRun]) -> LevelRun:
    merged = LevelRun(runs[0].target, runs[0].concurrency, sum(r.wall_s for r in runs))
    for run in runs:
        merged.samples += run.samples
        merged.errors += run.errors
    return merged


async def measure(
    direct: Target,
    gateway: Target,
    args: argparse.Namespace,
    cpu: dict[int, CpuMeter] | None = None,
) -> dict[int, dict[str, LevelRun]]:
    """Alternating rounds per level; with `cpu` (level -> meter), the gateway rounds'
    CPU time per process is added to that level's meter."""
    widest = max(args.concurrency)
    per_round = max(1, args.requests // args.rounds)
    clients = {target.name: make_client(widest, args.client) for target in (direct, gateway)}
    try:
        for target in (direct, gateway):
            await run_level(clients[target.name], target, concurrency=widest, requests=args.warmup)
        results: dict[int, dict[str, LevelRun]] = {}
        for level in args.concurrency:
            runs: dict[str, list[LevelRun]] = {direct.name: [], gateway.name: []}
            for _round in range(args.rounds):
                for target in (direct, gateway):
                    client = clients[target.name]
                    meter = cpu.get(level) if cpu is not None and target is gateway else None
                    before = meter.snapshot() if meter is not None else {}
                    run = await run_level(client, target, concurrency=level, requests=per_round)
                    if meter is not None:
                        meter.add(before, meter.snapshot())
                    runs[target.name].append(run)
            results[level] = {name: merge(parts) for name, parts in runs.items()}
        return results
    finally:
        for client in clients.values():
            await client.aclose()


def print_errors(results: dict[int, dict[str, LevelRun]]) -> None:
    for level, runs in results.items():
        for run in runs.values():
            for error in sorted(set(run.errors))[:5]:
                print(f"  c={level} {run.target} error: {error}", file=sys.stderr)


def print_books(books: Books) -> None:
    print(
        f"books: {books.sent} gateway requests, {books.usage_rows} usage rows "
        f"({books.ok_rows} ok, {books.cloud_rows} overflowed to the cloud), "
        f"settled within {books.waited_s:.2f} s after the last; "
        f"balance {books.balance}, sum(ledger) {books.ledger_sum}, "
        f"expected {books.initial - books.charged}"
    )
    print(f"lost: {books.lost}")
    if not books.balanced:
        print("LEDGER MISMATCH: balance != sum(ledger) or != initial - charged")


def run_compare(args: argparse.Namespace) -> tuple[bool, dict[str, Any]]:
    """The gateway-vs-direct scenario: prints its figures; (books sound, JSON parts)."""
    widest = max(args.concurrency)
    load_before = os.getloadavg()[0]
    with running_stack(
        local_slots=max(widest, 4),
        sim_parallel=max(widest, SIM_MIN_PARALLEL),
        failover=args.failover,
        logs=None if args.logs is None else args.logs / "compare",
    ) as stack:
        account = stack.new_account(plan="pro", credits=CREDITS)
        direct = Target.direct(stack.sim_url)
        gateway = Target.gateway(stack.api_url, account.key)
        cpu = {level: CpuMeter(stack.cpu_trees()) for level in args.concurrency}
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(measure(direct, gateway, args, cpu))
        load_after = os.getloadavg()[0]
        sent = args.warmup + sum(runs["gateway"].sent for runs in results.values())
        books = check_books(stack, account_id=account.account_id, sent=sent, initial=CREDITS)
    figures = [Figures.of(run) for runs in results.values() for run in runs.values()]
    ratios = [Ratio.of(Figures.of(r["direct"]), Figures.of(r["gateway"])) for r in results.values()]
    checks = targets(ratios)
    print(
        f"\nresayil bench: {os.cpu_count()} cores (load average {load_before:.1f} before, "
        f"{load_after:.1f} after), zero-delay simulator, 32-token answers, {args.requests} "
        f"requests per level and target in {args.rounds} alternating rounds "
        f"(+{args.warmup} warm-up each), {args.client} client; times in ms\n"
    )
    print(table(figures, ratios), end="\n\n")
    for level, runs in results.items():
        served = len(runs["gateway"].samples)
        wall_ms = runs["gateway"].wall_s * 1000 / served if served else 0.0
        print(cpu_line(level, cpu[level].per_request(runs["gateway"].sent), wall_ms))
    print_errors(results)
    print_books(books)
    for check in checks:
        print(check.line())
    document = {
        "figures": figures,
        "ratios": ratios,
        "checks": checks,
        "cpu_ms_per_gateway_request": {
            str(level): cpu[level].per_request(runs["gateway"].sent)
            for level, runs in results.items()
        },
        "books": asdict(books) | {"lost": books.lost, "balanced": books.balanced},
        "settings": {k: str(v) for k, v in vars(args).items()}
        | {"cores": str(os.cpu_count()), "load_average": f"{load_before} {load_after}"},
    }
    return books.sound, document


def run_overload_scenario(args: argparse.Namespace) -> tuple[bool, dict[str, Any]]:
    """The overload scenario: prints its tables; (nothing lost and books sound, JSON)."""
    run = run_overload(
        overload_config(args),
        logs=None if args.logs is None else args.logs / "overload",
        load_before=os.getloadavg()[0],
    )
    text, checks, document = overload_report(run)
    print(f"\n{text}")
    return checks.sound, document


def run_dashboard_scenario(args: argparse.Namespace) -> tuple[bool, dict[str, Any]]:
    """The dashboard scenario: prints its table; (report equals the raw rows, JSON)."""
    config = DashboardConfig(
        rows=args.dashboard_rows, days=args.dashboard_days, runs=args.dashboard_runs
    )
    run = run_dashboard(config, load_before=os.getloadavg()[0])
    text, document = dashboard_report(run)
    print(f"\n{text}")
    return run.sound, document


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scenario == "ab":
        level = min(args.concurrency)
        result = run_ab(
            baseline=args.baseline,
            rounds=args.ab_rounds,
            per_round=args.ab_requests,
            concurrency=level,
            client=args.client,
        )
        print(
            f"\nresayil bench ab: c={level}, {args.ab_rounds} rounds of {args.ab_requests}, "
            f"{args.client} client"
        )
        print(result.text(args.baseline))
        return 0
    sound = True
    compare: dict[str, Any] | None = None
    overload: dict[str, Any] | None = None
    dashboard: dict[str, Any] | None = None
    if args.scenario in ("all", "compare"):
        ok, compare = run_compare(args)
        sound = sound and ok
    if args.scenario in ("all", "overload"):
        ok, overload = run_overload_scenario(args)
        sound = sound and ok
    if args.scenario in ("all", "dashboard"):
        ok, dashboard = run_dashboard_scenario(args)
        sound = sound and ok
    if args.json is not None:
        write_json(args.json, compare=compare, overload=overload, dashboard=dashboard)
    return 0 if sound else 1


if __name__ == "__main__":
    sys.exit(main())
