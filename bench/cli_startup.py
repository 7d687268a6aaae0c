"""CLI start-up: wall time of `rkat --help` and `rkat session list`, against `python -c pass`.

    .venv/bin/python bench/cli_startup.py [--runs N]

Each case is a fresh process of the installed ``rkat`` script (next to this
interpreter), timed from spawn to exit. The cases are interleaved run by run,
so machine noise hits all of them alike, and the baseline (``python -c pass``
with the same interpreter) is measured in the same run. ``session list`` runs
on a sqlite realm in a temp state root holding 20 sessions, made first with the
mock provider. Target (issue 4): ``rkat session list`` under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, verdict

TARGET_S = 0.3
BIN = Path(sys.executable).parent


def _wall(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs per case (default 15)")
    args = parser.parse_args()
    header("cli_startup: rkat process wall time vs python -c pass")
    rkat = str(BIN / "rkat")
    with tempfile.TemporaryDirectory() as state_root:
        env = {**os.environ, "RKAT_STATE_ROOT": state_root}
        for i in range(20):
            subprocess.run([rkat, "run", f"session {i}"], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "rkat --help": [rkat, "--help"],
            "rkat session list (20 sessions)": [rkat, "session", "list"],
        }
        for argv in cases.values():  # warm the page cache and .pyc files
            _wall(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, argv in cases.items():
                samples[name].append(_wall(argv, env))
    baseline = statistics.median(samples["python -c pass"])
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<34} median {median * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms  "
              f"max {max(values) * 1000:7.1f} ms  ratio to python -c pass {median / baseline:5.1f}x")
    listing = statistics.median(samples["rkat session list (20 sessions)"])
    print(f"TARGET rkat session list < {TARGET_S:.1f} s: median {listing:.3f} s "
          f"({listing / baseline:.1f}x python -c pass)  {verdict(listing < TARGET_S)}")


if __name__ == "__main__":
    main()
