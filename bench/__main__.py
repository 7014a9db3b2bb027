"""`python -m bench [--concurrency 1,32] [--requests N] [--json PATH]`.

Starts PostgreSQL, Redis, the simulator, one api and one dispatcher; runs the same
streaming load directly against the simulator and through the gateway, level by
level and round by round (direct, gateway, direct, gateway...) so drift hits both;
prints the figures and their ratios; then proves the books: one usage row per
gateway request and balance == sum(ledger). Exits 1 only when the books are wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import asdict
from pathlib import Path

import uvloop

from bench.load import LevelRun, Target, make_client, run_level
from bench.report import Figures, Ratio, table, targets, write_json
from bench.system import Books, check_books, running_stack

CREDITS = 10_000_000
SIM_MIN_PARALLEL = 64


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
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    args = parser.parse_args(argv)
    if not args.concurrency or min(args.concurrency) < 1 or not 1 <= args.rounds <= args.requests:
        parser.error("need concurrency levels >= 1 and at least one request per round")
    return args


def merge(runs: list[LevelRun]) -> LevelRun:
    merged = LevelRun(runs[0].target, runs[0].concurrency, sum(r.wall_s for r in runs))
    for run in runs:
        merged.samples += run.samples
        merged.errors += run.errors
    return merged


async def measure(
    direct: Target, gateway: Target, args: argparse.Namespace
) -> dict[int, dict[str, LevelRun]]:
    widest = max(args.concurrency)
    per_round = max(1, args.requests // args.rounds)
    clients = {direct.name: make_client(widest), gateway.name: make_client(widest)}
    try:
        for target in (direct, gateway):
            await run_level(clients[target.name], target, concurrency=widest, requests=args.warmup)
        results: dict[int, dict[str, LevelRun]] = {}
        for level in args.concurrency:
            runs: dict[str, list[LevelRun]] = {direct.name: [], gateway.name: []}
            for _round in range(args.rounds):
                for target in (direct, gateway):
                    client = clients[target.name]
                    run = await run_level(client, target, concurrency=level, requests=per_round)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    widest = max(args.concurrency)
    load_before = os.getloadavg()[0]
    with running_stack(
        local_slots=max(widest, 4),
        sim_parallel=max(widest, SIM_MIN_PARALLEL),
        failover=args.failover,
        logs=args.logs,
    ) as stack:
        account = stack.new_account(plan="pro", credits=CREDITS)
        direct = Target.direct(stack.sim_url)
        gateway = Target.gateway(stack.api_url, account.key)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(measure(direct, gateway, args))
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
        f"(+{args.warmup} warm-up each); times in ms\n"
    )
    print(table(figures, ratios), end="\n\n")
    print_errors(results)
    print_books(books)
    for check in checks:
        print(check.line())
    if args.json is not None:
        write_json(
            args.json,
            figures=figures,
            ratios=ratios,
            checks=checks,
            books=asdict(books) | {"lost": books.lost, "balanced": books.balanced},
            settings={k: str(v) for k, v in vars(args).items()}
            | {"cores": str(os.cpu_count()), "load_average": f"{load_before} {load_after}"},
        )
    return 0 if books.sound else 1


if __name__ == "__main__":
    sys.exit(main())
