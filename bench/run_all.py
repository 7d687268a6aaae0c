"""Run every benchmark in turn and summarise their targets (``make bench`` calls this).

    .venv/bin/python bench/run_all.py [--strict] [name ...]

Each script runs in its own process (so one's memory and threads don't skew
the next) with this interpreter, its output streamed as it goes. At the end the
``TARGET`` lines of all of them (and the ``RATIO`` lines of scripts without a
target) are repeated. Exit status: 1 if a script
failed; with ``--strict`` also 1 if a target was missed (off by default: on a
noisy 2-core machine a miss is a figure to read, not a build failure).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["turn_overhead", "observability_overhead", "idle_actors", "fanout", "concurrent_turns",
           "provider_overhead", "cli_startup",
           "mcp_roundtrip", "rpc_roundtrip", "rest_throughput", "multiprocess", "long_sessions",
           "surface_turns", "history_fork", "postgres_store", "postgres_realm", "postgres_scaleout"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("names", nargs="*", help=f"a subset of: {', '.join(SCRIPTS)}")
    args = parser.parse_args()
    names = args.names or SCRIPTS
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    summary: list[str] = []
    failed: list[str] = []
    started = time.perf_counter()
    for name in names:
        script = HERE / f"{name}.py"
        print(f"\n##### {name}  ({sys.executable} {script.relative_to(HERE.parent)})", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=HERE.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            stripped = line.strip()
            if stripped.startswith(("TARGET", "RATIO", "hibernated sessions cost")):
                summary.append(f"{name:<17} {stripped}")
        rc = proc.wait()
        elapsed = time.perf_counter() - t0
        print(f"##### {name}: exit {rc}, {elapsed:.1f} s", flush=True)
        if rc != 0:
            failed.append(name)

    print(f"\n===== summary ({time.perf_counter() - started:.0f} s, {os.cpu_count()} cpus) =====")
    for row in summary:
        print(row)
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
        return 1
    if args.strict and any("MISSED" in row for row in summary):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
