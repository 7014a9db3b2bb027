"""Figures from the raw samples: the table, the ratio rows, the targets and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.load import LevelRun

TTFT_DELTA_TARGET_MS = 3.0  # gateway p50 TTFT at most this much above direct, at concurrency 1
THROUGHPUT_RATIO_TARGET = 0.25  # gateway req/s at least this share of direct, at concurrency 32


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Figures:
    target: str
    concurrency: int
    requests: int
    errors: int
    rps: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    total_p50_ms: float
    total_p99_ms: float

    @classmethod
    def of(cls, run: LevelRun) -> Figures:
        ttft = [s.ttft_s * 1000 for s in run.samples] or [math.nan]
        total = [s.total_s * 1000 for s in run.samples] or [math.nan]
        return cls(
            target=run.target,
            concurrency=run.concurrency,
            requests=len(run.samples),
            errors=len(run.errors),
            rps=len(run.samples) / run.wall_s if run.wall_s else math.nan,
            ttft_p50_ms=percentile(ttft, 50),
            ttft_p99_ms=percentile(ttft, 99),
            total_p50_ms=percentile(total, 50),
            total_p99_ms=percentile(total, 99),
        )


@dataclass(frozen=True)
class Ratio:
    concurrency: int
    throughput_ratio: float  # gateway / direct
    ttft_p50_delta_ms: float  # gateway - direct
    total_p50_delta_ms: float

    @classmethod
    def of(cls, direct: Figures, gateway: Figures) -> Ratio:
        return cls(
            concurrency=direct.concurrency,
            throughput_ratio=gateway.rps / direct.rps if direct.rps else math.nan,
            ttft_p50_delta_ms=gateway.ttft_p50_ms - direct.ttft_p50_ms,
            total_p50_delta_ms=gateway.total_p50_ms - direct.total_p50_ms,
        )


@dataclass(frozen=True)
class Target:
    name: str
    measured: float | None
    met: bool | None

    def line(self) -> str:
        verdict = {None: "not measured", True: "MET", False: "MISSED"}[self.met]
        figure = "" if self.measured is None else f" (measured {self.measured:.3g})"
        return f"target {self.name}: {verdict}{figure}"


def targets(ratios: list[Ratio]) -> list[Target]:
    by_level = {r.concurrency: r for r in ratios}
    one, many = by_level.get(1), by_level.get(32)
    ttft = None if one is None else one.ttft_p50_delta_ms
    throughput = None if many is None else many.throughput_ratio
    return [
        Target(
            f"c=1 TTFT p50 delta <= {TTFT_DELTA_TARGET_MS:g} ms",
            ttft,
            None if ttft is None else ttft <= TTFT_DELTA_TARGET_MS,
        ),
        Target(
            f"c=32 throughput ratio >= {THROUGHPUT_RATIO_TARGET:.0%}",
            throughput,
            None if throughput is None else throughput >= THROUGHPUT_RATIO_TARGET,
        ),
    ]


HEADER = (
    f"{'level':>5}  {'target':<8} {'req/s':>8} {'ttft p50':>9} {'ttft p99':>9} "
    f"{'total p50':>10} {'total p99':>10} {'errors':>6}"
)


def table(figures: list[Figures], ratios: list[Ratio]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    by_level = {r.concurrency: r for r in ratios}
    for f in figures:
        lines.append(
            f"{f.concurrency:>5}  {f.target:<8} {f.rps:>8.1f} {f.ttft_p50_ms:>9.2f} "
            f"{f.ttft_p99_ms:>9.2f} {f.total_p50_ms:>10.2f} {f.total_p99_ms:>10.2f} "
            f"{f.errors:>6}"
        )
        ratio = by_level.get(f.concurrency)
        if f.target == "gateway" and ratio is not None:
            lines.append(
                f"{ratio.concurrency:>5}  {'ratio':<8} "
                f"gateway/direct req/s {ratio.throughput_ratio:.1%}"
                f", ttft p50 {ratio.ttft_p50_delta_ms:+.2f} ms"
                f", total p50 {ratio.total_p50_delta_ms:+.2f} ms"
            )
    return "\n".join(lines)


def write_json(
    path: Path,
    *,
    compare: dict[str, Any] | None,
    overload: dict[str, Any] | None,
    dashboard: dict[str, Any] | None = None,
) -> None:
    """The compare scenario's figures at the top level (as before), the overload
    scenario's under "overload", the dashboard scenario's under "dashboard"."""
    document: dict[str, Any] = {}
    if compare is not None:
        document = {
            "settings": compare["settings"],
            "results": [asdict(f) for f in compare["figures"]],
            "ratios": [asdict(r) for r in compare["ratios"]],
            "targets": [asdict(t) for t in compare["checks"]],
            "cpu_ms_per_gateway_request": compare["cpu_ms_per_gateway_request"],
            "books": compare["books"],
        }
    if overload is not None:
        document["overload"] = overload
    if dashboard is not None:
        document["dashboard"] = dashboard
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
