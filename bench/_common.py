"""Small helpers shared by the benchmark scripts (not a benchmark itself).

Every script puts the repository root on ``sys.path`` through this module, so
``.venv/bin/python bench/<name>.py`` works from any directory without an
installed package.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

def now() -> float:
    """A monotonic clock in seconds (perf_counter)."""
    return time.perf_counter()


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean / min / max of durations given in seconds, in milliseconds."""
    ms = [s * 1000.0 for s in samples_s]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "mean": statistics.fmean(ms),
        "min": min(ms),
        "max": max(ms),
    }


def fmt_summary(name: str, s: dict[str, float]) -> str:
    return (f"{name:<44} n={int(s['n']):<5} p50={s['p50']:7.3f} ms  p99={s['p99']:7.3f} ms  "
            f"mean={s['mean']:7.3f} ms  min={s['min']:6.3f}  max={s['max']:7.3f}")


def rss_bytes() -> int:
    """This process's resident set size (VmRSS from /proc/self/status)."""
    with open("/proc/self/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def mb(n: float) -> float:
    return n / (1024 * 1024)


def count_tasks() -> int:
    """How many trio tasks exist now: a walk of the root task's nurseries."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    total = 0
    stack = [root]
    while stack:
        task = stack.pop()
        total += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return total


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def header(title: str) -> None:
    print(f"== {title} ==")
    print(f"python {sys.version.split()[0]}, trio {trio.__version__}, cpus={os.cpu_count()}, "
          f"pid={os.getpid()}")
