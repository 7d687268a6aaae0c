"""Kill hosts running turns with SIGKILL at random instants; the store must stay whole.

Two child processes at a time (fresh interpreters) run the real host,
``actors.open_service``, on one realm and state root. Each one runs turns in a loop
on the realm's sessions: quick mock turns, streamed ones that pace their words
(so a kill lands mid-stream), and new sessions with a first turn. Before each call a
child prints ``try TAG`` (the prompt, unique), and right after the service returned
``done SESSION RUN TAG TEXT``. Both children contend for the same sessions, so they
also meet each other's turns (SESSION_BUSY) and the runs of children killed before
(which the live one closes, as their owners are dead).

The test kills a child at a random instant, anywhere from its start-up to deep in
its loop, and starts another one in its place, at least 100 times a backend. At a
check point (halfway and at the end) it kills both children and checks the store:

* every run a child reported is there exactly once, completed, with the text the
  child was given; every session it reported exists;
* every session's rows are whole runs: a user row and one assistant row carrying
  the same run_id, each prompt once, every run record agrees (no duplicated,
  missing or orphan rows), and the session record matches its rows
  (``message_count``, ``last_assistant_text``);
* a run cut off before its commit either is still open, owned by a dead process
  and without rows, or was closed as interrupted: the user's input kept and an
  empty, cancelled answer;
* a new host on the realm frees every session at once (the owners are dead: no
  need to wait out the lease): none is active, no run is open, and a turn on each
  one succeeds.

The same loop across hosts of a ``postgres`` realm (each host its own ``RKAT_HOST_ID``,
so only leases tell a dead host) is tests/test_crash_hosts.py, built on this module's
functions.

Seed and figures are printed (run with ``-s``); ``RKAT_CRASH_SEED`` replays a seed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import trio

from actors import SessionService, open_service
from meerkat.realm import open_realm
from meerkat.store import RunRecord, SessionStore, open_store, owner_is_alive
from meerkat.transcript import BlockAssistantMessage, Message, SystemMessage, UserMessage

REPO = Path(__file__).resolve().parent.parent
REALM = "crash-turns"
KILLS = 100
CHECK_EVERY = 50
CHILDREN = 2
#: Seconds a child may take to start its host before the test gives up on it (a safety net, not a measure).
READY_WAIT = 30.0

#: A host: the realm's sessions, then tests/crash_turn_loop.py's turns until it is killed.
CHILD = r'''
import os, random, sys

import trio

import actors

sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
from crash_turn_loop import say, turn_loop

root, backend, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])


async def main():
    async with actors.open_service("crash-turns", state_root=root, backend=backend) as service:
        say("ready")
        sessions = [s.session_id for s in await service.list_sessions(limit=1000)]
        await turn_loop(service, sessions, random.Random(seed), f"t-{os.getpid()}", {"crash": "turns"})


trio.run(main)
'''


@dataclass
class Reports:
    """What the children said, over every child of one backend."""

    tried: dict[str, str] = field(default_factory=dict)  # tag -> kind
    done: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # run_id -> (session, tag, text)
    sessions: set[str] = field(default_factory=set)
    busy: int = 0
    #: Turns whose lease another host took (a host stalled longer than its lease).
    lost: int = 0
    #: Where the kills landed: before the host was up, mid-call by kind, or between calls.
    landed: dict[str, int] = field(default_factory=dict)
    #: Prompts of the parent's own turns (the usability check).
    parent_tags: set[str] = field(default_factory=set)


class Child:
    """One host process; a thread collects its stdout lines."""

    def __init__(self, root: Path, backend: str, seed: int, err_path: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env = {k: v for k, v in env.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}  # the mock only
        self.err_path = err_path
        self.started = time.monotonic()
        with err_path.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), backend, str(seed)],
                                         stdout=subprocess.PIPE, stderr=err, env=env, cwd=REPO)
        self.lines: list[list[Any]] = []
        self.ready_at: float | None = None
        self.kill_at: float | None = None
        self.kill_after_ready = 0.0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            if not raw.endswith(b"\n"):
                break
            line = json.loads(raw)
            if line == ["ready"]:
                self.ready_at = time.monotonic()
            self.lines.append(line)

    def poll(self) -> None:
        """Take in what the child wrote since (here a thread does it as lines come)."""

    def discard(self) -> None:
        """End a child the test no longer needs (after a failure)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def kill(self) -> None:
        """SIGKILL, then wait until it is gone and every line it wrote is read."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        if self.proc.returncode != -signal.SIGKILL:
            raise AssertionError(f"child ended on its own ({self.proc.returncode}): "
                                 f"{self.err_path.read_text()[-3000:]}")

    def report_into(self, reports: Reports) -> None:
        for line in self.lines:
            if line[0] == "try":
                reports.tried[line[2]] = line[1]
            elif line[0] == "done":
                _, session_id, run_id, tag, text = line
                reports.done[run_id] = (session_id, tag, text)
                reports.sessions.add(session_id)
            elif line[0] == "busy":
                reports.busy += 1
            elif line[0] == "lost":
                reports.lost += 1
        where = self.where_killed()
        reports.landed[where] = reports.landed.get(where, 0) + 1

    def where_killed(self) -> str:
        """Where the kill landed, from the last line: start-up, ``mid-KIND`` of a call, or between calls."""
        last = self.lines[-1] if self.lines else ["spawned"]
        return ("start-up" if last[0] in ("spawned", "ready") and len(self.lines) <= 1
                else f"mid-{last[1]}" if last[0] == "try" else "between calls")


def plan_kill(child: Child, rng: random.Random) -> None:
    """When to kill, drawn once per child: a fifth during start-up (timed from the spawn),
    the rest while it works (timed from its ``ready``)."""
    if rng.random() < 0.2:
        child.kill_at = child.started + rng.uniform(0.05, 0.4)
    else:
        child.kill_after_ready = rng.uniform(0.0, 0.3)


def text_of(row: BlockAssistantMessage) -> str:
    return "".join(block.data.get("text", "") for block in row.blocks)


def all_sessions(store: SessionStore) -> list[Any]:
    out: list[Any] = []
    while True:
        page = store.list_sessions(limit=500, offset=len(out))
        out.extend(page)
        if len(page) < 500:
            return out


def runs_of(session_id: str, rows: list[Message]) -> list[tuple[UserMessage, BlockAssistantMessage]]:
    """The session's rows as whole runs (user row + assistant row, one run_id); fails on anything else."""
    body = [r for r in rows if not isinstance(r, SystemMessage)]
    assert len(body) % 2 == 0, f"{session_id}: a run's rows are split: {body[-1]}"
    pairs = []
    for user, answer in zip(body[0::2], body[1::2]):
        assert isinstance(user, UserMessage), f"{session_id}: expected a user row, got {user}"
        assert isinstance(answer, BlockAssistantMessage), f"{session_id}: expected an answer, got {answer}"
        assert user.run_id is not None and answer.run_id == user.run_id, (user, answer)
        pairs.append((user, answer))
    return pairs


def owner_died(run: RunRecord) -> bool:
    """The run's owner is a dead process of this host (the file backends' check)."""
    return not owner_is_alive(run.owner)


def check_store(store: SessionStore, reports: Reports, *, owner_gone: Callable[[RunRecord], bool] = owner_died,
                closed_because: tuple[str, ...] = ("died",)) -> dict[str, int]:
    """Every invariant a store left by killed hosts must hold; returns counts by run outcome.

    ``owner_gone`` says whether an open run's owner is dead; ``closed_because``: words one
    of which the error of a run closed for a dead owner carries.
    """
    records = {r.session_id: r for r in all_sessions(store)}
    assert reports.sessions <= set(records), f"reported sessions lost: {reports.sessions - set(records)}"
    open_runs = {run.session_id: run for run in store.open_runs()}
    known_tags = set(reports.tried) | reports.parent_tags
    seen_runs: dict[str, str] = {}
    seen_tags: set[str] = set()
    counts = {"completed": 0, "interrupted": 0, "open": 0, "completed unreported": 0}
    for session_id, record in records.items():
        rows = store.read_messages(session_id)
        assert record.message_count == len(rows), (session_id, record.message_count, len(rows))
        last_text = None
        last_start = 0
        for user, answer in runs_of(session_id, rows):
            run_id = user.run_id
            assert run_id not in seen_runs, f"run {run_id} in {session_id} and {seen_runs.get(run_id)}"
            seen_runs[run_id] = session_id
            assert user.content in known_tags, f"a run nobody asked for: {user.content!r}"
            assert user.content not in seen_tags, f"prompt {user.content!r} stored twice"
            seen_tags.add(user.content)
            run = store.get_run(run_id)
            assert run is not None and run.session_id == session_id and run.prompt == user.content, run
            # In order: a session runs one turn at a time, so its runs' rows follow their starts.
            assert run.started_at_ms >= last_start, (session_id, run_id)
            last_start = run.started_at_ms
            if run.status == "completed":
                assert answer.stop_reason != "cancelled" and text_of(answer), answer
                last_text = text_of(answer)
                counts["completed"] += 1
                reported = reports.done.get(run_id)
                if reported is None:
                    counts["completed unreported"] += 1  # killed between the commit and the print
                else:
                    assert reported == (session_id, user.content, text_of(answer)), (reported, answer)
            else:
                # Closed for a dead owner: the input kept, an empty cancelled answer.
                assert run.status == "interrupted", run
                assert answer.blocks == [] and answer.stop_reason == "cancelled", answer
                assert run.error is not None and any(word in run.error for word in closed_because), run.error
                counts["interrupted"] += 1
        # The record agrees with its rows: the answer shown is the last one completed.
        assert record.last_assistant_text == last_text, (session_id, record.last_assistant_text, last_text)
        open_run = open_runs.get(session_id)
        if open_run is None:
            assert record.active_run_id is None, record
        else:
            # Cut off between begin and commit, not yet swept: no rows, a dead owner.
            assert record.active_run_id == open_run.run_id and open_run.run_id not in seen_runs
            assert owner_gone(open_run), open_run
            assert open_run.prompt in known_tags
            counts["open"] += 1
    lost = {run_id: report for run_id, report in reports.done.items() if run_id not in seen_runs}
    assert not lost, f"reported runs missing from the store: {lost}"
    for run_id, (session_id, _, _) in reports.done.items():
        assert seen_runs[run_id] == session_id
    return counts


async def free_and_use(root: Path, backend: str, reports: Reports, round_no: int) -> int:
    """A new host on the realm: no session may be busy, and a turn on each one succeeds."""
    async with open_service(REALM, state_root=root, backend=backend) as service:
        return await use_every_session(service, reports, round_no)


async def use_every_session(service: SessionService, reports: Reports, round_no: int) -> int:
    """On a host that just started: no session is busy, and a turn on each one succeeds."""
    sessions = await service.list_sessions(limit=1000)
    busy = [s.session_id for s in sessions if s.is_active]
    assert not busy, f"sessions still busy after a new host started: {busy}"
    for summary in sessions:
        tag = f"parent-{round_no}-{summary.session_id}"
        reports.parent_tags.add(tag)
        result = await service.start_turn(summary.session_id, tag)
        assert result.text == f"Mock reply to: {tag}"
        reports.done[result.run_id] = (summary.session_id, tag, result.text)
    return len(sessions)


def checkpoint(root: Path, backend: str, reports: Reports, round_no: int) -> dict[str, int]:
    paths = open_realm(REALM, state_root=root, backend=backend).paths
    return check_and_use(
        lambda: open_store(backend, sqlite_path=paths.sessions_sqlite_path, jsonl_dir=paths.sessions_jsonl_dir),
        lambda: trio.run(free_and_use, root, backend, reports, round_no), reports)


def check_and_use(store_of: Callable[[], SessionStore], use: Callable[[], int], reports: Reports,
                  **check: Any) -> dict[str, int]:
    """The store checked as the killed hosts left it, then ``use`` (a new host turning every session),
    then checked again: the new host closed every run left open and lost none."""
    store = store_of()
    try:
        before = check_store(store, reports, **check)
    finally:
        store.close()
    used = use()
    store = store_of()
    try:
        after = check_store(store, reports, **check)
        assert store.open_runs() == []
    finally:
        store.close()
    # The new host closed every run left open; none went missing.
    assert after["open"] == 0
    assert after["interrupted"] == before["interrupted"] + before["open"]
    assert after["completed"] == before["completed"] + used
    return {**after, "swept": before["open"]}


@dataclass
class LoopOutcome:
    """What a crash loop did: kills, hosts started, runs a new host closed, the last check's counts."""

    kills: int = 0
    spawned: int = 0
    swept: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    #: Seconds from each host's spawn to its ``ready`` (hosts killed before it are left out).
    start_ups: list[float] = field(default_factory=list)


def crash_loop(new_child: Callable[[int, list[Child]], Child], check: Callable[[int], dict[str, int]],
               reports: Reports, rng: random.Random, *, at_once: int, kills: int = KILLS,
               check_every: int = CHECK_EVERY) -> LoopOutcome:
    """Keep ``at_once`` hosts running, kill each at its planned instant and start another in its
    place (``new_child(number, running)``); every ``check_every`` kills, kill the rest too and run
    ``check(kills so far)``; stop after the check point that reaches ``kills``."""
    began = time.monotonic()
    children: list[Child] = []
    out = LoopOutcome()
    next_check = check_every
    try:
        while True:
            while len(children) < at_once:
                children.append(new_child(out.spawned, children))
                plan_kill(children[-1], rng)
                out.spawned += 1
            now = time.monotonic()
            for child in list(children):
                child.poll()
                if child.kill_at is None and child.ready_at is not None:
                    child.kill_at = child.ready_at + child.kill_after_ready
                if child.kill_at is not None and now >= child.kill_at:
                    child.kill()
                    if child.ready_at is not None:
                        out.start_ups.append(child.ready_at - child.started)
                    child.report_into(reports)
                    children.remove(child)
                    out.kills += 1
                elif child.ready_at is None and now - child.started > READY_WAIT:
                    child.kill()
                    raise AssertionError(f"a child never got ready: {child.err_path.read_text()[-3000:]}")
            if out.kills >= next_check:
                # A check point: the other children die too (they count), then the store is checked.
                for child in children:
                    child.kill()
                    child.report_into(reports)
                    out.kills += 1
                children.clear()
                out.counts = check(out.kills)
                out.swept += out.counts["swept"]
                next_check += check_every
                if out.kills >= kills:
                    break
            time.sleep(0.005)
    finally:
        for child in children:
            child.discard()
    out.elapsed = time.monotonic() - began
    return out


def report_and_judge(label: str, out: LoopOutcome, reports: Reports, hosts: str) -> None:
    """Print the figures of a crash loop, and fail it if its kills proved little."""
    counts, completed = out.counts, out.counts["completed"]
    print(f"[{label}] {out.kills} SIGKILLs in {out.elapsed:.1f} s ({hosts}, {out.spawned} started); "
          f"where they landed: {dict(sorted(reports.landed.items()))}; "
          f"a host's start-up took {statistics.median(out.start_ups or [0]):.2f} s (median)")
    print(f"[{label}] runs completed {completed} (reported {len(reports.done)}, "
          f"committed but cut before the report {counts['completed unreported']}); "
          f"closed as interrupted {counts['interrupted']} (by the live hosts {counts['interrupted'] - out.swept}, "
          f"by a new host at the check points {out.swept}); "
          f"SESSION_BUSY between live hosts {reports.busy}; leases lost by a stalled host {reports.lost}; "
          f"sessions {len(reports.sessions)}")
    # The test proves little unless most kills cut a call short and the hosts met each other's runs.
    mid_call = sum(n for where, n in reports.landed.items() if where.startswith("mid-"))
    assert mid_call >= out.kills // 2, reports.landed
    assert counts["interrupted"] > 0 and completed > out.kills


def crash_seed(label: str) -> random.Random:
    """The kill schedule's generator: a fresh seed, printed, or ``RKAT_CRASH_SEED``'s."""
    seed = int(os.environ.get("RKAT_CRASH_SEED") or int.from_bytes(os.urandom(4), "big"))
    print(f"\n[{label}] seed {seed} (RKAT_CRASH_SEED={seed} replays the kill schedule)")
    return random.Random(seed)


@pytest.mark.parametrize("backend", ["sqlite", "jsonl"])
def test_sigkill_mid_turn_loses_and_duplicates_nothing(backend: str, tmp_path: Path) -> None:
    rng = crash_seed(backend)
    root = tmp_path / "root"
    reports = Reports()
    trio.run(free_and_use, root, backend, reports, 0)  # the realm exists before the children race
    out = crash_loop(lambda n, _: Child(root, backend, rng.getrandbits(32), tmp_path / f"child-{n}.err"),
                     lambda kills: checkpoint(root, backend, reports, kills), reports, rng, at_once=CHILDREN)
    report_and_judge(backend, out, reports, f"{CHILDREN} hosts at a time")
