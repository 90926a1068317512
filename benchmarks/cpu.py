"""CPU seconds by process role, from /proc: where a benchmark phase's CPU went.

On a machine where the benchmark, the control plane and the system under test share a few
cores, a latency figure means little without knowing who else was running."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")

Role = Callable[[int, str, str], str | None]
"""(pid, comm, cmdline) → the role the process's CPU counts for, or None to ignore it."""


def _read(pid: int) -> tuple[str, str, float] | None:
    """comm, cmdline (spaces for NULs) and CPU seconds of the whole process (all threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
    fields = rest.split()
    return comm, cmdline, (int(fields[11]) + int(fields[12])) / TICK


def snapshot(role: Role) -> dict[str, float]:
    """CPU seconds used so far by live processes, summed by role. A process that ended between
    two snapshots is missed: roles should be long-lived processes."""
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if (read := _read(pid)) is None:
            continue
        comm, cmdline, seconds = read
        if (name := role(pid, comm, cmdline)) is not None:
            totals[name] = totals.get(name, 0.0) + seconds
    return totals


def used(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after if after[k] - before.get(k, 0.0) > 0}


def line(seconds: Mapping[str, float], wall: float) -> str:
    """``name 1.2 s (8 %)``, busiest first; the share is of one core over ``wall`` seconds."""
    parts = [
        f"{k} {v:.1f} s ({v / wall:.0%})" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])
    ]
    return ", ".join(parts) or "—"
