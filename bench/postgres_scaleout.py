"""Turns/s with 1, 2 and 4 host processes on one realm: postgres scale-out, against the same hosts on sqlite.

A *host* is a real process running ``actors.open_service`` (started by this
script: one first, to make the realm, then the rest together). On postgres each
has its own ``RKAT_HOST_ID`` and state root, so the database is all they share;
on sqlite they share the realm's files on this machine, as processes of one host
do. The PostgreSQL server is a throw-away one the script starts
(``meerkat/testing/postgres.py``) with the server's durable defaults (``fsync``,
``synchronous_commit=on``), on the same machine.

For 1, 2 and 4 of the hosts at once, each runs mock turns (40 words, no delay)
for ``--seconds`` on sessions of its own:

* sequential: one loop per host (each host's next turn waits for its last);
* concurrent: ``--loops`` loops per host.

Printed: total turns/s and the scale-out ratio against 1 host, per backend;
the baseline is the same hosts on a sqlite realm in the same run.
``--also-no-wait`` adds a postgres realm whose commits do not wait for their WAL
flush (``synchronous_commit=off``: sqlite's WAL + ``synchronous=NORMAL`` promise).

    .venv/bin/python bench/postgres_scaleout.py [--seconds 5] [--loops 8] [--also-no-wait]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import header, now

import trio

from actors import SessionService, open_service

REALM = "bench-scaleout"
TURN = {"reply_words": 40, "token_delay_ms": 0}
DURABLE = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}
HOST_COUNTS = (1, 2, 4)


# -- a host process (``--serve``): commands as JSON lines on stdin, answers on stdout ----------------------------

async def serve(backend: str, state_root: str) -> None:
    async with open_service(REALM, state_root=state_root, backend=backend) as service:
        say({"ready": True})
        while line := await trio.to_thread.run_sync(sys.stdin.readline):
            command = json.loads(line)
            if command["op"] == "sessions":
                say({"sessions": [(await service.create_session()).session_id for _ in range(command["n"])]})
            else:
                say(await run_for(service, command["sessions"], command["seconds"]))


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def run_for(service: SessionService, sessions: list[str], seconds: float) -> dict[str, Any]:
    """Turns on each session, one loop per session, for ``seconds``."""
    done = [0]
    began = now()

    async def loop(session_id: str) -> None:
        while now() - began < seconds:
            await service.start_turn(session_id, "go", provider_params=TURN)
            done[0] += 1

    async with trio.open_nursery() as nursery:
        for session_id in sessions:
            nursery.start_soon(loop, session_id)
    return {"turns": done[0], "seconds": now() - began}


# -- the bench ----------------------------------------------------------------------------------------------

class Host:
    """A host process of this script; a thread queues its answers."""

    def __init__(self, backend: str, state_root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", backend, str(state_root)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(json.loads(line))

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def recv(self) -> dict[str, Any]:
        return self.answers.get(timeout=300)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def start_hosts(backend: str, root: Path, url: str | None) -> list[Host]:
    """The hosts of one realm: the first makes it, the others start together once it is there."""
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}  # the mock only

    def host(i: int) -> Host:
        if url is None:
            return Host(backend, root, base)
        return Host(backend, root / f"host-{i}", {**base, "RKAT_HOST_ID": f"bench-host-{i}", "RKAT_DATABASE_URL": url})

    hosts = [host(0)]
    assert hosts[0].recv() == {"ready": True}
    hosts += [host(i) for i in range(1, max(HOST_COUNTS))]
    for other in hosts[1:]:
        assert other.recv() == {"ready": True}
    return hosts


def throughput(hosts: list[Host], loops: int, seconds: float) -> float:
    """Total turns/s of ``hosts`` running ``loops`` loops each, on sessions of their own, at once."""
    sessions = []
    for host in hosts:
        host.send(op="sessions", n=loops)
        sessions.append(host.recv()["sessions"])
    for host, mine in zip(hosts, sessions):
        host.send(op="run", sessions=mine, seconds=seconds)
    answers = [host.recv() for host in hosts]
    return sum(a["turns"] for a in answers) / max(a["seconds"] for a in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--loops", type=int, default=8, help="turn loops per host in the concurrent case")
    parser.add_argument("--also-no-wait", action="store_true", help="add postgres with synchronous_commit=off")
    parser.add_argument("--serve", nargs=2, metavar=("BACKEND", "STATE_ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve, *args.serve)
        return
    header("turns/s with 1, 2 and 4 hosts on one realm: postgres vs sqlite")
    from meerkat.testing.postgres import running_postgres

    with running_postgres(settings=DURABLE) as server, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        url = server.create_database("bench")
        realms: dict[str, str | None] = {"sqlite": None, "postgres": url}
        if args.also_no_wait:  # a database of its own, so it starts as empty as the other
            realms["postgres, synchronous_commit=off"] = (server.create_database("bench_no_wait")
                                                          + "?options=-c%20synchronous_commit%3Doff")
        print(f"# {server.version}; mock turns of 40 words without delay, {args.seconds:g} s per figure")
        figures: dict[tuple[str, int, int], float] = {}
        for name, realm_url in realms.items():
            backend = "sqlite" if realm_url is None else "postgres"
            hosts = start_hosts(backend, tmp / name.replace(" ", "_"), realm_url)
            try:
                for loops in (1, args.loops):
                    for n in HOST_COUNTS:
                        figures[name, loops, n] = throughput(hosts[:n], loops, args.seconds)
            finally:
                for host in hosts:
                    host.close()
        for loops, kind in ((1, "sequential, 1 loop per host"), (args.loops, f"concurrent, {args.loops} loops per host")):
            print(f"\n-- {kind}: turns/s (x 1 host) --")
            for name in realms:
                one = figures[name, loops, 1]
                cells = "  ".join(f"{n} hosts {figures[name, loops, n]:7.1f} ({figures[name, loops, n] / one:4.2f}x)"
                                  for n in HOST_COUNTS)
                print(f"  {name:<34} {cells}")
        for loops in (1, args.loops):
            pg, lite = figures["postgres", loops, max(HOST_COUNTS)], figures["sqlite", loops, max(HOST_COUNTS)]
            print(f"RATIO {loops} loop(s) per host, {max(HOST_COUNTS)} hosts / 1: postgres "
                  f"{pg / figures['postgres', loops, 1]:.2f}, sqlite {lite / figures['sqlite', loops, 1]:.2f}; "
                  f"postgres/sqlite at {max(HOST_COUNTS)} hosts {pg / lite:.2f}")


if __name__ == "__main__":
    main()
