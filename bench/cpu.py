"""CPU time per process, from /proc: what a gateway request costs each part of the system.

At concurrency 1 the gateway is bound by the two cores' CPU rather than by waiting (its
processes, the client and the simulator together use more CPU per request than the
request's wall time), so CPU per request is the figure that moves the c=1 time to first
token, and the one to compare between versions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
CLIENT = "client"


def _process_ticks(pid: int) -> int:
    """utime + stime of one process (all its threads), in clock ticks; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def _children() -> dict[int, list[int]]:
    """Every running process's children, by parent pid (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    return children


def _with_descendants(pid: int, children: dict[int, list[int]]) -> Iterator[int]:
    """`pid` and every process below it (PostgreSQL: the postmaster and its backends)."""
    pending = [pid]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(children.get(current, []))


@dataclass
class CpuMeter:
    """CPU milliseconds per named process tree, summed over the intervals measured."""

    trees: dict[str, int]  # name -> root pid
    used_ms: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> dict[str, float]:
        children = _children()
        ms = {
            name: sum(_process_ticks(pid) for pid in _with_descendants(root, children))
            * 1000
            / TICKS_PER_S
            for name, root in self.trees.items()
        }
        ms[CLIENT] = time.process_time() * 1000
        return ms

    def add(self, before: dict[str, float], after: dict[str, float]) -> None:
        for name, value in after.items():
            self.used_ms[name] = self.used_ms.get(name, 0.0) + value - before.get(name, value)

    def per_request(self, requests: int) -> dict[str, float]:
        return {name: used / requests for name, used in self.used_ms.items()} if requests else {}


def cpu_line(level: int, per_request: dict[str, float], wall_ms: float) -> str:
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per_request.items())
    total = sum(per_request.values())
    return (
        f"cpu per gateway request at c={level}, ms: {parts}; total {total:.2f} "
        f"for {wall_ms:.2f} ms of wall time per request on {os.cpu_count()} cores"
    )
