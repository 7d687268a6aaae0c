"""Kill a writing process with SIGKILL at random instants; nothing committed may be lost.

A child process (a fresh interpreter) creates sessions and commits runs in a loop
against a disk store (or a PostgreSQL database), printing each session and run right after the store call
returned. The test kills it at a random instant, then opens the same path with a
new store and checks that:

* every session and run the child reported is there (committed means durable),
* every committed run is whole: exactly a user row and an assistant row carrying
  its run_id, no duplicates, and the session record agrees with its rows
  (message_count, usage, last_seq, last_assistant_text),
* a run cut off before its commit left no rows and is still ``running``,
* the store is still writable (it closes the dead child's runs as interrupted and
  commits one run of its own).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meerkat.store import SessionStore, owner_is_alive
from meerkat.store.base import RunCommit
from meerkat.transcript import BlockAssistantMessage, SystemMessage, UserMessage

KILLS = 20
REPO = Path(__file__).resolve().parent.parent

# Shared by the child process (as source) and this test (exec'd below), so both
# write runs of exactly the same shape.
COMMON = '''
import os
import time

from meerkat.store import RunCommit, RunRecord, SessionRecord, current_owner
from meerkat.transcript import BlockAssistantMessage, SystemMessage, UserMessage, text_block
from meerkat.usage import Usage

T0 = "2026-01-01T00:00:00.000+00:00"


def open_test_store(backend, path):
    if backend == "postgres":  # path: the database URL
        from meerkat.store.postgres import PostgresStore
        return PostgresStore(path, realm_id="crash")
    if backend == "sqlite":
        from meerkat.store.sqlite import SqliteStore
        return SqliteStore(path)
    from meerkat.store.jsonl import JsonlStore
    return JsonlStore(path)


def new_session(store, session_id):
    now = time.time_ns() // 1_000_000
    record = SessionRecord(session_id=session_id, created_at_ms=now, updated_at_ms=now,
                           model="m", provider="p", labels={"crash": "test"})
    store.create_session(record, [SystemMessage(content="sys " + session_id, created_at=T0)])


def all_sessions(store, **kw):
    """Every live session, page by page."""
    out = []
    while True:
        page = store.list_sessions(limit=500, offset=len(out), **kw)
        out.extend(page)
        if len(page) < 500:
            return out


def one_run(store, session_id, run_id):
    """begin + commit of one run: a user row and an assistant row; counters = runs so far."""
    now = time.time_ns() // 1_000_000
    store.begin_run(RunRecord(run_id=run_id, session_id=session_id, status="running",
                              started_at_ms=now, owner=current_owner(), prompt="q " + run_id))
    before = store.get_session(session_id)
    runs = (before.message_count - 1) // 2 + 1
    rows = [
        UserMessage(content="q " + run_id, created_at=T0, run_id=run_id),
        BlockAssistantMessage(blocks=[text_block("answer " + run_id)], stop_reason="end_turn",
                              created_at=T0, run_id=run_id),
    ]
    return store.commit_run(RunCommit(
        run_id=run_id, session_id=session_id, status="completed", messages=rows,
        usage=Usage(input_tokens=runs, output_tokens=2 * runs), last_assistant_text="answer " + run_id,
        last_seq=runs, finished_at_ms=now, model="m", provider="p"))
'''

CHILD = COMMON + '''
import sys

backend, path = sys.argv[1], sys.argv[2]
store = open_test_store(backend, path)
pid = os.getpid()
print("ready", flush=True)
sessions = [r.session_id for r in all_sessions(store) if r.active_run_id is None]
i = 0
while True:
    if i % 25 == 0 or not sessions:
        sid = "s-%d-%d" % (pid, i)
        new_session(store, sid)
        print("create", sid, flush=True)
        sessions.append(sid)
    sid = sessions[i % len(sessions)]
    run_id = "r-%d-%d" % (pid, i)
    one_run(store, sid, run_id)
    print("commit", sid, run_id, flush=True)
    i += 1
'''

exec(COMMON)  # defines open_test_store, new_session, all_sessions, one_run for the checks below


def check_store(
    store: SessionStore, created: set[str], committed: dict[str, str], dead_pid: int, checked_runs: set[str]
) -> int:
    """Every invariant of a store a killed writer left behind; returns the committed run count.

    Rows are checked in full every time; run records only once each (``checked_runs``)
    to keep the test fast as the store grows.
    """
    sessions = all_sessions(store, labels={"crash": "test"})  # noqa: F821 (exec'd)
    by_id = {r.session_id: r for r in sessions}
    assert created <= set(by_id), f"reported sessions lost: {created - set(by_id)}"
    seen_runs: set[str] = set()
    open_by_session = {r.session_id: r for r in store.open_runs()}
    assert len(open_by_session) == len(store.open_runs()), "two open runs on one session"
    total = 0
    for sid, record in by_id.items():
        rows = store.read_messages(sid)
        assert record.message_count == len(rows)
        assert rows[0] == SystemMessage(content="sys " + sid, created_at=T0)  # noqa: F821 (exec'd)
        body = rows[1:]
        assert len(body) % 2 == 0, f"{sid}: a run's rows are split: {body[-1]}"
        pairs = [(body[k], body[k + 1]) for k in range(0, len(body), 2)]
        for user, assistant in pairs:
            assert isinstance(user, UserMessage) and isinstance(assistant, BlockAssistantMessage)
            run_id = user.run_id
            assert run_id is not None and assistant.run_id == run_id
            assert user.content == "q " + run_id
            assert assistant.blocks[0].data == {"text": "answer " + run_id}
            assert run_id not in seen_runs, f"duplicate run {run_id}"
            seen_runs.add(run_id)
            if run_id not in checked_runs:
                run = store.get_run(run_id)
                assert run is not None and run.status == "completed" and run.session_id == sid
                checked_runs.add(run_id)
        n = len(pairs)
        total += n
        assert record.last_seq == n
        assert record.usage.input_tokens == n and record.usage.output_tokens == 2 * n
        if n:
            assert record.last_assistant_text == "answer " + pairs[-1][0].run_id
        else:
            assert record.last_assistant_text is None
        open_run = open_by_session.get(sid)
        if open_run is not None:
            # Cut off between begin and commit: no rows, still marked running.
            assert record.active_run_id == open_run.run_id
            assert open_run.run_id not in seen_runs
            assert open_run.owner.endswith(f":{dead_pid}")
        else:
            assert record.active_run_id is None
    for run_id, sid in committed.items():
        assert run_id in seen_runs, f"committed run {run_id} of {sid} lost"
    return total


def reconcile_and_write(store: SessionStore, iteration: int) -> None:
    """What the next process does: close dead runs as interrupted, then keep working."""
    for run in store.open_runs():
        assert not owner_is_alive(run.owner)
        store.commit_run(
            RunCommit(
                run_id=run.run_id, session_id=run.session_id, status="interrupted", messages=[],
                usage=store.get_session(run.session_id, include_archived=True).usage,
                last_assistant_text=None, last_seq=0, finished_at_ms=run.started_at_ms,
                model="m", provider="p", error="owner process died",
            )
        )
        assert store.get_run(run.run_id).status == "interrupted"
    assert store.open_runs() == []
    sid = f"parent-{iteration}"
    new_session(store, sid)  # noqa: F821 (exec'd)
    record = one_run(store, sid, f"r-parent-{iteration}")  # noqa: F821 (exec'd)
    assert record.message_count == 3 and record.active_run_id is None


@pytest.mark.parametrize("backend", ["sqlite", "jsonl", "postgres"])
def test_sigkill_never_loses_a_commit(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "postgres":  # a client killed mid-transaction: the server rolls it back
        path: Path | str = request.getfixturevalue("postgres_url")
    else:
        path = tmp_path / ("realm.sqlite3" if backend == "sqlite" else "sessions")
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    created: set[str] = set()
    committed: dict[str, str] = {}
    checked_runs: set[str] = set()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    kills_mid_work = 0
    # A guard against a hang, not a speed check: a loaded machine may be slow.
    deadline = time.monotonic() + 180
    for iteration in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, backend, str(path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO,
        )
        # Kill at a random instant of the write loop, counted from when the child is
        # in it: interpreter start-up time varies with the machine's load, and a
        # kill during start-up would prove nothing.
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n", child.stderr.read().decode()[-2000:]
        time.sleep(rng.uniform(0.0, 0.14))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL, f"child ended on its own: {err.decode()[-2000:]}"
        lines = out.decode().splitlines()
        if lines:
            kills_mid_work += 1
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "create":
                created.add(parts[1])
            elif len(parts) == 3 and parts[0] == "commit":
                committed[parts[2]] = parts[1]
            # A last line cut mid-print is possible; it proves nothing either way.

        store = open_test_store(backend, path)  # noqa: F821 (exec'd)
        try:
            total = check_store(store, created, committed, child.pid, checked_runs)
            assert total >= len(committed)
            reconcile_and_write(store, iteration)
            created.add(f"parent-{iteration}")
            committed[f"r-parent-{iteration}"] = f"parent-{iteration}"
            check_store(store, created, committed, child.pid, checked_runs)
        finally:
            store.close()
        assert time.monotonic() < deadline, "crash test too slow"
    # Most kills must land while the child was writing, or the test proves little.
    assert kills_mid_work >= KILLS // 2
    assert len(committed) > KILLS * 3

