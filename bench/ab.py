"""Scenario `ab`: this checkout against another revision, both up at once, in one sitting.

This machine's speed swings by 2x within minutes, so two runs of `compare` minutes apart
cannot tell a 0.2 ms change from the drift. Here both systems run side by side (each on
its own PostgreSQL, Redis, simulator, api and dispatcher; the baseline's processes run
the other revision's code from a temporary git worktree) and the same client sends
small rounds to each in turn, so a slow phase hits both. Per round it takes the TTFT p50
of each; it prints the median of the per-round differences and in how many rounds this
checkout was the faster.

The baseline runs on this checkout's virtualenv and database migrations: compare
revisions with the same dependencies and schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from bench.cpu import CpuMeter
from bench.load import Target, make_client, run_level
from bench.system import running_stack

ROOT = Path(__file__).resolve().parent.parent
CREDITS = 10_000_000


@dataclass(frozen=True)
class AbResult:
    direct_ms: float
    baseline_ms: float
    current_ms: float
    round_differences_ms: list[float]
    # CPU ms per request of each system's processes (and the client), in its own rounds.
    cpu_ms: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def median_difference_ms(self) -> float:
        return statistics.median(self.round_differences_ms)

    @property
    def current_faster(self) -> int:
        return sum(1 for d in self.round_differences_ms if d < 0)

    def text(self, baseline: str) -> str:
        rounds = len(self.round_differences_ms)
        return "\n".join(
            [
                f"ttft p50 over all rounds: direct {self.direct_ms:.3f} ms, "
                f"{baseline} {self.baseline_ms:.3f} ms "
                f"(+{self.baseline_ms - self.direct_ms:.2f}), "
                f"this checkout {self.current_ms:.3f} ms "
                f"(+{self.current_ms - self.direct_ms:.2f})",
                f"this checkout - {baseline}, per round: median "
                f"{self.median_difference_ms:+.3f} ms; faster in {self.current_faster} of "
                f"{rounds} rounds",
                *(
                    f"cpu per request, {baseline if name == 'baseline' else 'this checkout'}, "
                    f"ms: "
                    + ", ".join(f"{part} {ms:.2f}" for part, ms in parts.items())
                    + f"; total {sum(parts.values()):.2f}"
                    for name, parts in self.cpu_ms.items()
                ),
            ]
        )


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """`revision` checked out in a temporary directory (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="resayil-ab-") as parent:
        path = Path(parent) / "baseline"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", str(path), revision], check=True)
        try:
            yield path
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(path)], check=False)


def code_from(path: Path) -> dict[str, str]:
    """The processes' environment for running the code in `path`: PYTHONSAFEPATH keeps
    `python -m` from putting the working directory ahead of PYTHONPATH."""
    return {"PYTHONPATH": str(path), "PYTHONSAFEPATH": "1"}


def run_ab(
    *, baseline: str, rounds: int, per_round: int, concurrency: int, client: str = "lean"
) -> AbResult:
    slots = max(concurrency, 4)
    with (
        worktree(baseline) as baseline_code,
        running_stack(local_slots=slots, sim_parallel=64, env=code_from(baseline_code)) as old,
        running_stack(local_slots=slots, sim_parallel=64, env=code_from(ROOT)) as new,
    ):
        targets = {
            "direct": Target.direct(old.sim_url),
            "baseline": Target.gateway(old.api_url, old.new_account(credits=CREDITS).key),
            "current": Target.gateway(new.api_url, new.new_account(credits=CREDITS).key),
        }
        meters = {"baseline": CpuMeter(old.cpu_trees()), "current": CpuMeter(new.cpu_trees())}
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_alternate(targets, rounds, per_round, concurrency, meters, client))


def round_order(names: list[str], number: int) -> list[str]:
    """The order of round `number`: [direct, a, b], [b, a, direct], [direct, b, a],
    [a, b, direct], again and again. Over four rounds both systems run as often first,
    as often second and as often third, and each as often right after direct, after the
    other and after itself: a place in the round that is faster (warm, or right after a
    quiet target) favours neither."""
    direct, first, second = names
    return [
        [direct, first, second],
        [second, first, direct],
        [direct, second, first],
        [first, second, direct],
    ][number % 4]


async def _alternate(
    targets: dict[str, Target],
    rounds: int,
    per_round: int,
    concurrency: int,
    meters: dict[str, CpuMeter],
    client_kind: str,
) -> AbResult:
    clients = {name: make_client(concurrency, client_kind) for name in targets}
    ttft: dict[str, list[float]] = {name: [] for name in targets}
    medians: dict[str, list[float]] = {name: [] for name in targets}
    try:
        for name, target in targets.items():  # warm-up: connections, caches
            await run_level(clients[name], target, concurrency=concurrency, requests=200)
        for number in range(rounds):
            for name in round_order(list(targets), number):
                meter = meters.get(name)
                before = meter.snapshot() if meter is not None else {}
                run = await run_level(
                    clients[name], targets[name], concurrency=concurrency, requests=per_round
                )
                if meter is not None:
                    meter.add(before, meter.snapshot())
                if run.errors:
                    raise RuntimeError(f"{name}: {run.errors[0]}")
                times = [sample.ttft_s * 1000 for sample in run.samples]
                ttft[name] += times
                medians[name].append(statistics.median(times))
    finally:
        for client in clients.values():
            await client.aclose()
    return AbResult(
        direct_ms=statistics.median(ttft["direct"]),
        baseline_ms=statistics.median(ttft["baseline"]),
        current_ms=statistics.median(ttft["current"]),
        round_differences_ms=[
            current - old
            for current, old in zip(medians["current"], medians["baseline"], strict=True)
        ],
        cpu_ms={name: meter.per_request(rounds * per_round) for name, meter in meters.items()},
    )
