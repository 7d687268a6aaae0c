"""Tool-call round trip of ``meerkat_sessions`` against an empty tool, on one ``rkat-mcp`` server.

A real ``rkat-mcp`` subprocess (sqlite realm in a temp dir) is driven by the
official ``mcp`` client, over stdio and over streamable HTTP. The server is
started with ``RKAT_MCP_BENCH_TOOL=1``, which lists one more tool,
``bench_noop``: it parses its (empty) arguments and returns ``{}`` through the
same result path as every tool. So the baseline is the whole MCP round trip
(client encode, transport, dispatch, result shaping, decode) with no host work,
and the ratio is what asking the host for its session list adds.

The realm holds ``--sessions`` sessions (default 20), so ``meerkat_sessions``
returns that many entries, as an agent would see. Calls alternate between the
two tools, round by round, so machine noise hits both alike.

    .venv/bin/python bench/mcp_roundtrip.py [--sessions N] [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import fmt_summary, header, now, summary_ms

import trio
from mcp import Client, StdioServerParameters

RKAT_MCP = str(Path(sys.executable).with_name("rkat-mcp"))


def server_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}, "RKAT_MCP_BENCH_TOOL": "1"}


def start_http_server(state_root: str) -> tuple[subprocess.Popen[str], str]:
    """``rkat-mcp --http 127.0.0.1:0`` on the bench realm; returns the process and its URL."""
    proc = subprocess.Popen([RKAT_MCP, "--realm", "bench", "--state-root", state_root, "--http", "127.0.0.1:0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=server_env())
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening on " in line:
            url = line.rsplit("listening on ", 1)[1].strip()
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining
            return proc, url
    raise RuntimeError("rkat-mcp --http did not start")


async def seed(client: Client, sessions: int) -> None:
    listed = await client.call_tool("meerkat_sessions", {"limit": 1000})
    for _ in range(sessions - len(listed.structured_content["sessions"])):
        await client.call_tool("meerkat_run", {"prompt": "hello", "model": "mock", "labels": {"bench": "yes"}})


async def measure(client: Client, calls: int, rounds: int) -> dict[str, list[float]]:
    """Interleaved rounds of ``calls`` calls to each tool; per-call seconds."""
    samples: dict[str, list[float]] = {"bench_noop": [], "meerkat_sessions": []}
    for _ in range(20):  # warm-up: imports, caches, connection pools
        for name in samples:
            await client.call_tool(name, {})
    for _ in range(rounds):
        for name, times in samples.items():
            for _ in range(calls):
                started = now()
                result = await client.call_tool(name, {})
                times.append(now() - started)
                assert not result.is_error
    return samples


def report(transport: str, samples: dict[str, list[float]], sessions: int) -> float:
    noop, listed = summary_ms(samples["bench_noop"]), summary_ms(samples["meerkat_sessions"])
    print(fmt_summary(f"{transport}: empty tool (bench_noop)", noop))
    print(fmt_summary(f"{transport}: meerkat_sessions ({sessions} sessions)", listed))
    ratio = listed["p50"] / noop["p50"]
    print(f"{transport}: meerkat_sessions / empty tool, p50: {ratio:.2f}x "
          f"(+{listed['p50'] - noop['p50']:.3f} ms for the host's work)")
    return ratio


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20, help="sessions in the realm (default 20)")
    parser.add_argument("--calls", type=int, default=100, help="calls per tool per round (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args()
    header("mcp_roundtrip: meerkat_sessions vs an empty tool, same server")
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        stdio = StdioServerParameters(command=RKAT_MCP, args=["--realm", "bench", "--state-root", root],
                                      env=server_env())
        async with Client(stdio) as client:
            await seed(client, args.sessions)
            ratios["stdio"] = report("stdio", await measure(client, args.calls, args.rounds), args.sessions)
        proc, url = start_http_server(root)
        try:
            async with Client(url) as client:
                ratios["http"] = report("http", await measure(client, args.calls, args.rounds), args.sessions)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"TARGET none (a figure): meerkat_sessions round trip / empty tool, p50: "
          f"stdio {ratios['stdio']:.2f}x, http {ratios['http']:.2f}x")


if __name__ == "__main__":
    trio.run(main)
