"""One realm, several processes: what crossing a process costs, against the same thing in one process.

Real processes on one sqlite realm in a temp state root: an owner ``rkat-rpc`` (A)
that runs the turns, a second ``rkat-rpc`` (B) and an ``rkat-rest`` daemon. Three figures:

* **interrupt latency**: A runs a long mock turn (3,000 words, 20 ms a word); once
  its first delta arrived, the script asks for an interrupt and times until A's
  ``turn/start`` response arrives. Asked through ``POST /sessions/{id}/interrupt`` on
  rkat-rest, through ``turn/interrupt`` on B, and (the baseline) through
  ``turn/interrupt`` on A itself. Interleaved round by round; p50/max and ratios.
* **foreign events**: an SSE subscriber on rkat-rest follows a turn that A runs
  (100 words, 5 ms a word). Each event's arrival at the SSE reader is compared with
  its arrival as a ``session/event`` notification at A's client (same clock). The
  baseline: the same subscriber following a turn that rkat-rest runs itself, where
  the last event's lag is measured against the POST's response.
* **turns/s on the turn path**: sequential mock turns through A (sqlite realm,
  with leases, the live link and the registry of followers) against the same client
  on an rkat-rpc serving a memory realm (none of that; no store either).

    .venv/bin/python bench/multiprocess.py [--rounds 20] [--turns 400]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import header, now, percentile

BIN = Path(sys.executable).parent
REALM = "bench-mp"
SLOW = {"reply_words": 3000, "token_delay_ms": 20}
WAIT = 60.0


def child_env(state_root: str) -> dict[str, str]:
    """No provider keys (default-model turns stay on the mock), our venv's scripts first."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_BASE_URL")) and k != "RKAT_REST_TOKEN"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["RKAT_STATE_ROOT"] = state_root
    return env


class Rpc:
    """An ``rkat-rpc`` child; a thread stamps each stdout line with its arrival time."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([str(BIN / "rkat-rpc"), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        self.lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put((now(), json.loads(raw)))

    def request(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                          "params": params}).encode() + b"\n")
        self.proc.stdin.flush()
        return self.next_id

    def until(self, request_id: int) -> tuple[list[tuple[float, dict[str, Any]]], float, dict[str, Any]]:
        """(stamped lines before the response, its arrival time, the response)."""
        before = []
        while True:
            stamp, message = self.lines.get(timeout=WAIT)
            if message.get("id") == request_id and "method" not in message:
                return before, stamp, message
            before.append((stamp, message))

    def result(self, method: str, params: dict[str, Any]) -> Any:
        _, _, response = self.until(self.request(method, params))
        if "result" not in response:
            raise RuntimeError(f"{method} failed: {response}")
        return response["result"]

    def first_delta(self, request_id: int) -> None:
        """Read until the turn's first text delta (the turn is under way)."""
        while True:
            _, message = self.lines.get(timeout=WAIT)
            if message.get("method") == "session/event" and \
                    message["params"]["event"]["payload"]["type"] == "text_delta":
                return
            if message.get("id") == request_id:
                raise RuntimeError(f"the turn ended before streaming: {message}")

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=WAIT)
        self.proc.stdout.close()


class Rest:
    """An ``rkat-rest`` child on a free port."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([str(BIN / "rkat-rest"), *args, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env={**env, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"rkat-rest did not start: {line!r}")
        self.port = int(line.strip().rsplit(":", 1)[1].rstrip("/"))

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            conn.request("POST", path, body=json.dumps(body or {}), headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"POST {path}: {response.status} {data}")
            return data
        finally:
            conn.close()

    def close(self) -> None:
        assert self.proc.stdout is not None
        self.proc.terminate()
        self.proc.wait(timeout=WAIT)
        self.proc.stdout.close()


class SseReader:
    """``GET /sessions/{id}/events`` in a thread; stamps each event (by seq) until ``run_completed``."""

    def __init__(self, port: int, session_id: str) -> None:
        self.stamps: dict[int, float] = {}
        self.types: dict[int, str] = {}
        self.ready = threading.Event()
        self.done = threading.Event()
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        self._path = f"/sessions/{session_id}/events"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        self._conn.request("GET", self._path)
        response = self._conn.getresponse()
        self.ready.set()
        try:
            while True:
                line = response.readline()
                if not line:
                    return
                if line.startswith(b"data:"):
                    stamp = now()
                    event = json.loads(line[5:])
                    if "seq" not in event:  # frames of the daemon's own (session_loaded, done)
                        continue
                    self.stamps[event["seq"]] = stamp
                    self.types[event["seq"]] = event["payload"]["type"]
                    if event["payload"]["type"] == "run_completed":
                        return
        finally:
            self.done.set()
            self._conn.close()


def ms(seconds: float) -> float:
    return seconds * 1000.0


def interrupt_latency(a: Rpc, b: Rpc, rest: Rest, rounds: int) -> dict[str, list[float]]:
    """Seconds from asking for an interrupt to A's turn/start response, per way of asking."""
    sessions = {way: a.result("session/create", {"prompt": "hello"})["session_id"]
                for way in ("same process", "rkat-rest", "second rkat-rpc")}
    samples: dict[str, list[float]] = {way: [] for way in sessions}
    for _ in range(rounds):
        for way, session_id in sessions.items():
            turn = a.request("turn/start", {"session_id": session_id, "prompt": "long", "provider_params": SLOW})
            a.first_delta(turn)
            asked = now()
            if way == "same process":
                a.request("turn/interrupt", {"session_id": session_id})
            elif way == "rkat-rest":
                rest.post(f"/sessions/{session_id}/interrupt")
            else:
                b.result("turn/interrupt", {"session_id": session_id})
            _, answered, response = a.until(turn)
            if "error" not in response:
                raise RuntimeError(f"the turn was not interrupted: {response}")
            samples[way].append(answered - asked)
    return samples


def foreign_events(a: Rpc, rest: Rest, words: int) -> dict[str, float]:
    """Lags (s) of SSE events behind the owner's own view, for a foreign and a local turn."""
    params = {"reply_words": words, "token_delay_ms": 5}
    session_id = a.result("session/create", {"prompt": "hello"})["session_id"]
    sse = SseReader(rest.port, session_id)
    sse.ready.wait(WAIT)
    time.sleep(0.3)  # the daemon has told other processes it follows the session
    notes, answered, response = a.until(a.request("turn/start", {"session_id": session_id, "prompt": "watched",
                                                                   "provider_params": params}))
    if "result" not in response:
        raise RuntimeError(f"turn failed: {response}")
    sse.done.wait(WAIT)
    owner = {m["params"]["event"]["seq"]: t for t, m in notes if m.get("method") == "session/event"}
    missing = set(owner) - set(sse.stamps)
    if missing:
        raise RuntimeError(f"the SSE subscriber missed {len(missing)} of {len(owner)} events")
    lags = [sse.stamps[seq] - owner[seq] for seq in owner]
    first, last = min(owner), max(owner)
    foreign = {"events": len(owner), "lag_p50": percentile(lags, 50), "lag_max": max(lags),
               "owner_span": owner[last] - owner[first], "sse_span": sse.stamps[last] - sse.stamps[first],
               "last_after_response": sse.stamps[last] - answered}

    # Baseline: rkat-rest runs the turn itself; its SSE reader vs the POST's answer.
    local_id = rest.post("/sessions", {"prompt": "hello"})["session_id"]
    sse = SseReader(rest.port, local_id)
    sse.ready.wait(WAIT)
    time.sleep(0.3)
    started = now()
    rest.post(f"/sessions/{local_id}/messages", {"prompt": "watched", "provider_params": params})
    answered = now()
    sse.done.wait(WAIT)
    seqs = sorted(sse.stamps)
    foreign.update(local_last_after_response=sse.stamps[seqs[-1]] - answered,
                   local_span=sse.stamps[seqs[-1]] - sse.stamps[seqs[0]], local_post=answered - started)
    return foreign


def turns_per_second(rpc: Rpc, turns: int) -> float:
    session_id = rpc.result("session/create", {"prompt": "warm up"})["session_id"]
    for _ in range(30):
        rpc.result("turn/start", {"session_id": session_id, "prompt": "x", "provider_params": {"reply": "ok"}})
    started = now()
    for _ in range(turns):
        rpc.result("turn/start", {"session_id": session_id, "prompt": "x", "provider_params": {"reply": "ok"}})
    return turns / (now() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="interrupts per way of asking (default 20)")
    parser.add_argument("--turns", type=int, default=400, help="sequential turns per backend, per round (default 400)")
    parser.add_argument("--words", type=int, default=100, help="words of the followed turn (default 100)")
    args = parser.parse_args()
    header("multiprocess: rkat-rpc x2 + rkat-rest on one sqlite realm")
    with tempfile.TemporaryDirectory(prefix="rkat-bench-mp-") as root:
        env = child_env(root)
        realm = ["--realm", REALM, "--state-root", root]
        a = Rpc(*realm, env=env)
        a.result("session/list", {})  # the realm exists before the others open it
        b = Rpc(*realm, env=env)
        rest = Rest(*realm, env=env)
        memory = Rpc("--realm", "bench-mp-memory", "--realm-backend", "memory", env=env)
        try:
            b.result("session/list", {})
            memory.result("session/list", {})
            print(f"interrupt of a running turn of rkat-rpc A, {args.rounds} rounds, the three ways interleaved:")
            samples = interrupt_latency(a, b, rest, args.rounds)
            base = percentile(samples["same process"], 50)
            for way, values in samples.items():
                p50 = percentile(values, 50)
                print(f"  asked via {way:<16} p50={ms(p50):7.1f} ms  max={ms(max(values)):7.1f} ms  "
                      f"ratio to same process, p50: {p50 / base:5.1f}x")
            worst = max(max(samples["rkat-rest"]), max(samples["second rkat-rpc"]))
            print(f"TARGET cross-process interrupt ends the turn within 1 s: max {worst:.3f} s  "
                  f"{'MET' if worst < 1.0 else 'MISSED'}")
            print(f"RATIO cross-process interrupt p50 / same-process p50: rkat-rest "
                  f"{percentile(samples['rkat-rest'], 50) / base:.1f}x, second rkat-rpc "
                  f"{percentile(samples['second rkat-rpc'], 50) / base:.1f}x")

            f = foreign_events(a, rest, args.words)
            print(f"SSE on rkat-rest following a turn of rkat-rpc A ({f['events']} events, {args.words} words "
                  f"at 5 ms):")
            print(f"  lag behind A's own notifications: p50={ms(f['lag_p50']):6.2f} ms  max={ms(f['lag_max']):6.2f} ms")
            print(f"  run span seen by A {ms(f['owner_span']):7.1f} ms, by the SSE reader {ms(f['sse_span']):7.1f} ms")
            print(f"  last event at the SSE reader, after A's turn/start response: "
                  f"{ms(f['last_after_response']):6.2f} ms")
            print(f"baseline, SSE on rkat-rest following a turn of rkat-rest itself: last event "
                  f"{ms(f['local_last_after_response']):6.2f} ms after the POST's response; span "
                  f"{ms(f['local_span']):7.1f} ms (POST {ms(f['local_post']):7.1f} ms)")
            print(f"RATIO foreign SSE span / owner span: {f['sse_span'] / f['owner_span']:.3f}x; "
                  f"foreign event lag p50 {ms(f['lag_p50']):.2f} ms")

            rates: dict[str, list[float]] = {"sqlite": [], "memory": []}
            for _ in range(3):
                rates["sqlite"].append(turns_per_second(a, args.turns))
                rates["memory"].append(turns_per_second(memory, args.turns))
            sqlite_rate = sorted(rates["sqlite"])[1]
            memory_rate = sorted(rates["memory"])[1]
            print(f"sequential mock turns through one rkat-rpc, median of 3 x {args.turns}: "
                  f"sqlite realm (leases, live link) {sqlite_rate:,.0f}/s, memory realm {memory_rate:,.0f}/s")
            print(f"RATIO turns/s sqlite (shared realm) / memory: {sqlite_rate / memory_rate:.2f}x "
                  f"({1000 / sqlite_rate - 1000 / memory_rate:+.2f} ms a turn)")
        finally:
            for process in (a, b, memory, rest):
                process.close()


if __name__ == "__main__":
    main()
