"""``rkat-rpc`` over stdio: round trips and text deltas per second, against a bare JSON echo.

    .venv/bin/python bench/rpc_roundtrip.py [--rounds N] [--words N]

Baseline, measured in the same run over the same kind of pipes: a bare Python
process that reads a JSON line, ``json.loads`` it and writes a JSON answer (the
floor of any JSON-RPC over stdio in Python). Measured:

1. sequential round trips of ``capabilities/get`` (the cheapest method) and of
   ``session/read`` (one actor round trip), raw lines, vs. the echo;
2. text deltas per second of one streamed mock turn (``reply_words`` words, no
   delay; the turn loop hands them over as they come, a few words a delta), read
   as ``session/event`` lines, vs. the echo writing as many lines of the same size;
3. through our SDK under trio: ``read_session`` and a full non-streamed mock turn
   (``session.turn``), each as a ratio to the SDK's own ``capabilities``-sized call
   (``models/catalog`` is bigger, so ``list_sessions`` on an empty realm is used).

No targets: the figures are ratios to read (printed as ``TARGET none``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, fmt_summary, header, summary_ms

RKAT_RPC = str(ROOT / ".venv" / "bin" / "rkat-rpc") if (ROOT / ".venv" / "bin" / "rkat-rpc").exists() \
    else os.path.join(os.path.dirname(sys.executable), "rkat-rpc")

ECHO = r"""
import json, sys
out = sys.stdout
for line in sys.stdin:
    request = json.loads(line)
    count = request.get("params", {}).get("lines", 0)
    if count:
        delta = {"jsonrpc": "2.0", "method": "session/event", "params": request["params"]["template"]}
        text = json.dumps(delta) + "\n"
        for _ in range(count):
            out.write(text)
    out.write(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"echo": True}}) + "\n")
    out.flush()
"""


class Pipe:
    """A child with line-oriented pipes and a sequential request loop."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env)
        self.reader = self.proc.stdout
        self.next_id = 0

    def call(self, method: str, params: dict) -> tuple[int, dict]:
        """Send, then read until the response: (lines read before it, response)."""
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                          "params": params}).encode() + b"\n")
        self.proc.stdin.flush()
        before = 0
        while True:
            line = self.reader.readline()
            if b'"id"' in line and b'"method"' not in line[:40]:
                message = json.loads(line)
                if message.get("id") == self.next_id:
                    return before, message
            before += 1

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.reader.close()


def round_trips(pipe: Pipe, method: str, params: dict, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        pipe.call(method, params)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000, help="round trips per case (default 2000)")
    parser.add_argument("--words", type=int, default=50_000, help="text deltas in the streamed turn")
    args = parser.parse_args()
    header("rkat-rpc over stdio vs a bare JSON echo")
    root = tempfile.mkdtemp(prefix="rpc-bench-")
    env = {**os.environ, "RKAT_STATE_ROOT": root}
    echo = Pipe([sys.executable, "-c", ECHO])
    rpc = Pipe([RKAT_RPC, "--realm", "bench", "--realm-backend", "memory"], env)
    try:
        _, created = rpc.call("session/create", {"prompt": "hi", "session_events": False})
        session_id = created["result"]["session_id"]
        warm = max(50, args.rounds // 10)
        for pipe, method, params in ((echo, "echo", {}), (rpc, "capabilities/get", {}),
                                     (rpc, "session/read", {"session_id": session_id})):
            round_trips(pipe, method, params, warm)
        cases = {"echo": [], "capabilities/get": [], "session/read": []}
        for _ in range(5):  # interleaved rounds, so noise hits every case alike
            cases["echo"] += round_trips(echo, "echo", {}, args.rounds // 5)
            cases["capabilities/get"] += round_trips(rpc, "capabilities/get", {}, args.rounds // 5)
            cases["session/read"] += round_trips(rpc, "session/read", {"session_id": session_id}, args.rounds // 5)
        stats = {name: summary_ms(samples) for name, samples in cases.items()}
        for name, s in stats.items():
            print(fmt_summary(f"round trip: {name}", s))
        for name in ("capabilities/get", "session/read"):
            print(f"TARGET none (a figure): {name} round trip / bare echo, p50: "
                  f"{stats[name]['p50'] / stats['echo']['p50']:.2f}x")

        # deltas per second: one streamed turn vs the echo writing as many lines of the same size
        started = time.perf_counter()
        lines, response = rpc.call("turn/start", {"session_id": session_id, "prompt": "go",
                                                  "provider_params": {"reply_words": args.words}})
        rpc_wall = time.perf_counter() - started
        assert "result" in response, response
        template = {"session_id": session_id, "event": {
            "event_id": "01a20d5e-ca29-706a-b54e-e00569eae93f",
            "source": {"type": "session", "session_id": session_id}, "seq": 4, "timestamp_ms": 1795520645673,
            "payload": {"type": "text_delta", "delta": "lorem ",
                        "assistant_message_id": "01a20d5e-ca28-7728-82c8-d1fa20710648"}}}
        started = time.perf_counter()
        echo_lines, _ = echo.call("echo", {"lines": lines, "template": template})
        echo_wall = time.perf_counter() - started
        rpc_rate, echo_rate = lines / rpc_wall, echo_lines / echo_wall
        print(f"streamed turn of {args.words} words: {lines} session/event lines in {rpc_wall:.3f} s = "
              f"{rpc_rate:,.0f} events/s ({args.words / rpc_wall:,.0f} words/s)")
        print(f"bare echo writing {echo_lines} lines of the same size: {echo_wall:.3f} s = {echo_rate:,.0f} lines/s")
        print(f"TARGET none (a figure): session/event lines/s over stdio / bare echo lines/s: {rpc_rate / echo_rate:.2f}x")
    finally:
        echo.close()
        rpc.close()
    sdk_figures(root, args.rounds // 4)


def sdk_figures(root: str, rounds: int) -> None:
    """Our SDK under trio: a cheap call, session/read, a full mock turn."""
    import trio

    from meerkat import MeerkatClient

    async def run() -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"list_sessions (empty realm)": [], "read_session": [],
                                       "full mock turn (session.turn)": []}
        client = await MeerkatClient().connect(realm_id="sdk-bench", realm_backend="memory", state_root=root)
        try:
            for _ in range(50):  # warm-up
                await client.list_sessions()
            session = None
            for _ in range(5):
                for _ in range(rounds // 5):
                    t = time.perf_counter()
                    await client.list_sessions(labels={"none": "x"})
                    out["list_sessions (empty realm)"].append(time.perf_counter() - t)
                    if session is None:
                        session = await client.create_session("hi", provider_params={"reply": "ok"})
                    t = time.perf_counter()
                    await client.read_session(session.id)
                    out["read_session"].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    await session.turn("again", provider_params={"reply": "ok"})
                    out["full mock turn (session.turn)"].append(time.perf_counter() - t)
        finally:
            await client.close()
        return out

    results = trio.run(run)
    stats = {name: summary_ms(samples) for name, samples in results.items()}
    for name, s in stats.items():
        print(fmt_summary(f"SDK (trio): {name}", s))
    base = stats["list_sessions (empty realm)"]["p50"]
    for name in ("read_session", "full mock turn (session.turn)"):
        print(f"TARGET none (a figure): SDK {name} / SDK list_sessions (label filter, no hits), p50: "
              f"{stats[name]['p50'] / base:.2f}x")


if __name__ == "__main__":
    main()
