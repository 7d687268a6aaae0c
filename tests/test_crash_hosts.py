"""A crash loop across hosts: SIGKILL hosts running turns on one PostgreSQL realm; the realm must stay whole.

Three hosts at a time serve realm ``crash-hosts`` of one database of the tests' real
PostgreSQL server, each a process of its own with its own ``RKAT_HOST_ID`` (``host-0``
to ``host-2``) and state root, so no host can take another's pid for a sign of life:
a killed host's runs are freed by their lease only (``RKAT_LEASE_SECS``, short here),
except by its successor on the same host id, which sees its predecessor's pid is
gone. Each host runs several turn loops at once (tests/crash_turn_loop.py, as the
hosts of test_crash_turns.py run one: new sessions, quick turns, streamed ones), so
one kill cuts several turns short.

A kill lands anywhere from a host's start-up to deep in its loops, and another host
starts with the same id in its place: 100 kills (``RKAT_CRASH_KILLS`` raises the count
for a deeper run). At each check point (every 50 kills) every host is killed, and:

* the store holds what tests/test_crash_turns.py's ``check_store`` demands: every
  completed run's rows exactly once, in order, with the reported text; cut runs
  either still open (owner dead, no rows) or closed as interrupted;
* once the lease of the last kill has run out, a new host finds no session busy
  and runs a turn on every one.

Hosts start cheaply: one process imports the host once and forks each host from
it (a fresh interpreter per host would cost ~0.6 s of CPU, 100 times). Seed and
figures are printed (run with ``-s``); ``RKAT_CRASH_SEED`` replays a seed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import trio

from actors import open_service
from meerkat.store import RunRecord, open_store

from test_crash_turns import (CHECK_EVERY, Child, Reports, check_and_use, crash_loop, crash_seed, report_and_judge,
                              use_every_session)

REPO = Path(__file__).resolve().parent.parent
REALM = "crash-hosts"
KILLS = int(os.environ.get("RKAT_CRASH_KILLS") or 100)
HOSTS = 3
#: Turn loops per host: a kill cuts that many turns at once.
LOOPS = 3
#: Short, so that a killed host's sessions come free within the test; long enough that a host on a
#: loaded machine still renews its leases in time (three renewals per lease).
LEASE = 2.0

#: One process that imports the host once, then forks a host per ``HOST_ID SEED OUT`` line read.
FORKER = r'''
import ctypes, os, random, signal, sys, traceback

import trio

import actors
import meerkat.store.postgres  # with psycopg and its pool: what a host imports, once, before the forks

sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
from crash_turn_loop import say, turn_loop

url, root, realm, loops = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def die_with_parent():
    # Nothing outlives a test that was itself killed: SIGKILL when the parent goes.
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os._exit(1)


async def host(host_id, seed):
    rng = random.Random(seed)
    async with actors.open_service(realm, state_root=os.path.join(root, host_id), backend="postgres",
                                   database_url=url) as service:
        say("ready")
        sessions = [s.session_id for s in await service.list_sessions(limit=1000)]
        async with trio.open_nursery() as nursery:
            for n in range(loops):
                nursery.start_soon(turn_loop, service, sessions, random.Random(rng.getrandbits(32)),
                                   f"t-{host_id}-{os.getpid()}-{n}", {"crash": "hosts"})


die_with_parent()
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the hosts: a killed host's pid is gone at once
for line in sys.stdin:
    host_id, seed, out = line.split()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            die_with_parent()
            os.environ["RKAT_HOST_ID"] = host_id
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 1)
            os.dup2(os.open(out + ".err", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), 2)
            trio.run(host, host_id, int(seed))
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(70)
    sys.stdout.write(f"{pid}\n")
    sys.stdout.flush()
'''


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


class Forker:
    """The process the hosts are forked from."""

    def __init__(self, url: str, root: Path, err_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}  # the mock only
        env["RKAT_LEASE_SECS"] = str(LEASE)
        with err_path.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", FORKER, url, str(root), REALM, str(LOOPS)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                                         cwd=REPO)

    def fork(self, host_id: str, seed: int, out: Path) -> int:
        """A new host process; its pid."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{host_id} {seed} {out}\n".encode())
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        """End the forker; hosts still running die with it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


class ForkedHost(Child):
    """One host forked by :class:`Forker`; it writes its lines to a file the test reads."""

    def __init__(self, forker: Forker, host_id: str, seed: int, out: Path) -> None:
        self.host_id = host_id
        self.out = out
        self.err_path = Path(f"{out}.err")
        self.started = time.monotonic()
        self.pid = forker.fork(host_id, seed, out)
        self.lines = []
        self.ready_at = None
        self.kill_at = None
        self.kill_after_ready = 0.0
        self._read = 0

    def poll(self) -> None:
        try:
            with self.out.open("rb") as fh:
                fh.seek(self._read)
                data = fh.read()
        except FileNotFoundError:
            return
        complete = data[:data.rfind(b"\n") + 1]
        self._read += len(complete)
        for raw in complete.splitlines():
            line = json.loads(raw)
            if line == ["ready"]:
                self.ready_at = time.monotonic()
            self.lines.append(line)

    def kill(self) -> None:
        """SIGKILL, then wait until it is gone and read every line it wrote."""
        if not pid_alive(self.pid):
            raise AssertionError(f"host {self.host_id} ended on its own: {self._err()}")
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(self.pid):
            assert time.monotonic() < deadline, f"host {self.host_id} outlived its SIGKILL"
            time.sleep(0.001)
        self.poll()

    def discard(self) -> None:
        if pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)

    def where_killed(self) -> str:
        """Start-up, ``mid-KIND`` when a call was under way (the last one begun), or between calls."""
        if not any(line == ["ready"] for line in self.lines):
            return "start-up"
        open_calls: dict[str, str] = {}
        for line in self.lines:
            if line[0] == "try":
                open_calls[line[2]] = line[1]
            elif line[0] in ("done", "busy", "lost"):
                open_calls.pop(line[3] if line[0] == "done" else line[1], None)
        return f"mid-{list(open_calls.values())[-1]}" if open_calls else "between calls"

    def _err(self) -> str:
        return self.err_path.read_text()[-3000:] if self.err_path.exists() else "(no stderr)"


def killed_host(run: RunRecord) -> bool:
    """The run's owner is one of the killed host processes (whatever its host id)."""
    host, _, pid = run.owner.rpartition(":")
    return host.startswith("host-") and not pid_alive(int(pid))


async def new_host_uses_everything(url: str, root: Path, reports: Reports, round_no: int) -> int:
    """A host of its own (``RKAT_HOST_ID`` checker) starts: no session may be busy, a turn on each succeeds."""
    async with open_service(REALM, state_root=root / "checker", backend="postgres", database_url=url) as service:
        return await use_every_session(service, reports, round_no)


def test_sigkill_hosts_of_a_postgres_realm_loses_and_duplicates_nothing(tmp_path, postgres_migrated_url,
                                                                        monkeypatch):
    url = postgres_migrated_url
    monkeypatch.setenv("RKAT_HOST_ID", "checker")
    rng = crash_seed("postgres")
    root = tmp_path / "hosts"
    reports = Reports()
    trio.run(new_host_uses_everything, url, root, reports, 0)  # the realm exists before the hosts race
    forker = Forker(url, root, tmp_path / "forker.err")

    def new_host(number: int, running: list[Child]) -> Child:
        taken = {child.host_id for child in running}  # type: ignore[attr-defined]
        host_id = next(f"host-{i}" for i in range(HOSTS) if f"host-{i}" not in taken)
        return ForkedHost(forker, host_id, rng.getrandbits(32), tmp_path / f"host-{number}.out")

    def check(kills: int) -> dict[str, int]:
        # No session may be busy past its lease: the new host starts once the last kill's leases ran out.
        time.sleep(LEASE + 0.2)
        return check_and_use(lambda: open_store("postgres", database_url=url, realm_id=REALM),
                             lambda: trio.run(new_host_uses_everything, url, root, reports, kills), reports,
                             owner_gone=killed_host, closed_because=("died", "lease"))

    try:
        out = crash_loop(new_host, check, reports, rng, at_once=HOSTS, kills=KILLS, check_every=CHECK_EVERY)
    finally:
        forker.close()
    report_and_judge("postgres", out, reports, f"{HOSTS} hosts at a time, {LOOPS} turn loops each")
