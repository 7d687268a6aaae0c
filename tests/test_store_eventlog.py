"""The durable event log and session inputs, on every store backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from meerkat.errors import InboxFull
from meerkat.events import TextDelta, make_envelope
from meerkat.store import RunCommit, SessionStore
from meerkat.store.eventlog import InputRecord
from meerkat.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from meerkat.transcript import SystemMessage
from meerkat.usage import Usage

from tests.test_store_suite import (  # noqa: F401  (fixtures)
    Opener,
    disk_opener,
    make_record,
    make_run,
    opener,
    run_rows,
    store,
    system_row,
    T0,
)


def deltas(session_id: str, first: int, count: int) -> list:
    return [make_envelope(session_id, seq, TextDelta(delta=f"d{seq}")) for seq in range(first, first + count)]


def commit_with_events(store: SessionStore, session_id: str, run_id: str, events: list, *, retention: int = 10_000,
                       inputs: list[InputRecord] | None = None) -> None:
    store.begin_run(make_run(run_id, session_id))
    store.commit_run(RunCommit(
        run_id=run_id, session_id=session_id, status="completed", messages=run_rows(run_id, "ok"), usage=Usage(),
        last_assistant_text="ok", last_seq=events[-1].seq if events else 0, finished_at_ms=3000,
        model="claude-test", provider="anthropic", events=events, inputs=inputs or [], event_retention=retention))


def test_events_are_logged_with_the_commit_and_read_after_a_cursor(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [system_row()])
    assert store.read_events("s1", after_seq=0, limit=10).events == []
    commit_with_events(store, "s1", "r1", deltas("s1", 1, 5))
    commit_with_events(store, "s1", "r2", deltas("s1", 6, 3))
    page = store.read_events("s1", after_seq=3, limit=100)
    assert [e.seq for e in page.events] == [4, 5, 6, 7, 8]
    assert page.events[0].payload == TextDelta(delta="d4")
    assert (page.latest, page.floor, page.has_more) == (8, 0, False)
    limited = store.read_events("s1", after_seq=0, limit=2)
    assert [e.seq for e in limited.events] == [1, 2] and limited.has_more
    assert store.read_events("nope", after_seq=0, limit=5) is None


def test_archived_sessions_keep_their_events_readable(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    commit_with_events(store, "s1", "r1", deltas("s1", 1, 2))
    assert store.archive_session("s1")
    assert [e.seq for e in store.read_events("s1", after_seq=0, limit=9).events] == [1, 2]


def test_retention_prunes_the_oldest_and_raises_the_floor(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    seq = 1
    for n in range(12):
        commit_with_events(store, "s1", f"r{n}", deltas("s1", seq, 10), retention=8)
        seq += 10
    page = store.read_events("s1", after_seq=0, limit=1000)
    record = store.get_session("s1")
    # 120 events written; pruning waits until the log is 64 over the retention, then keeps exactly 8.
    assert 8 <= len(page.events) <= 8 + 64
    assert page.floor == page.events[0].seq - 1 == record.event_floor > 0
    assert page.latest == 120 and record.event_count == len(page.events)


def test_events_survive_reopening(disk_opener: Opener) -> None:
    first = disk_opener()
    first.create_session(make_record("s1"), [])
    commit_with_events(first, "s1", "r1", deltas("s1", 1, 4))
    first.close()
    again = disk_opener()
    assert [e.seq for e in again.read_events("s1", after_seq=1, limit=10).events] == [2, 3, 4]


def _inject(session_id: str, input_id: str, key: str | None, text: str) -> InputRecord:
    return InputRecord(input_id=input_id, session_id=session_id, kind="inject_context", state="applied",
                       created_at_ms=5000, updated_at_ms=5000, idempotency_key=key, text=text)


def _external(session_id: str, input_id: str, key: str | None = None) -> InputRecord:
    return InputRecord(input_id=input_id, session_id=session_id, kind="external_event", state="queued",
                       created_at_ms=5000, updated_at_ms=5000, idempotency_key=key, event_type="ping",
                       payload={"n": 1})


def test_inject_appends_a_row_once_per_idempotency_key(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [system_row()])
    row = SystemMessage(content="remember the milk", created_at=T0)
    assert store.admit_input(_inject("s1", "i1", "k1", "remember the milk"), row, inbox_capacity=4) is None
    again = store.admit_input(_inject("s1", "i2", "k1", "remember the milk"), row, inbox_capacity=4)
    assert again is not None and again.input_id == "i1"
    assert store.get_session("s1").message_count == 2
    assert store.read_messages("s1")[-1] == row
    assert store.get_input("s1", idempotency_key="k1").input_id == "i1"
    assert store.get_input("s1", input_id="i1").text == "remember the milk"
    assert store.get_input("s1", idempotency_key="other") is None
    with pytest.raises(KeyError):
        store.admit_input(_inject("nope", "i3", None, "x"), row, inbox_capacity=4)


def test_external_events_queue_up_to_the_inbox_capacity_and_are_consumed_by_a_commit(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    for n in range(3):
        assert store.admit_input(_external("s1", f"e{n}"), None, inbox_capacity=3) is None
    with pytest.raises(InboxFull) as caught:
        store.admit_input(_external("s1", "e9"), None, inbox_capacity=3)
    assert caught.value.details["capacity"] == 3
    queued = store.queued_inputs("s1")
    assert [i.input_id for i in queued] == ["e0", "e1", "e2"]
    done = msgspec.structs.replace(queued[0], state="consumed", run_id="r1")
    commit_with_events(store, "s1", "r1", deltas("s1", 1, 1), inputs=[done])
    assert [i.input_id for i in store.queued_inputs("s1")] == ["e1", "e2"]
    assert store.get_input("s1", input_id="e0").run_id == "r1"


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    try:
        store.create_session(make_record("s1"), [])
        commit_with_events(store, "s1", "r1", deltas("s1", 1, 2))
        assert len(store.read_events("s1", after_seq=0, limit=5).events) == 2
    finally:
        store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    check.close()
