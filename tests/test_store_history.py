"""Transcript revisions and forks: one suite every store backend passes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest

from meerkat.errors import InvalidParams, RevisionConflict, SessionBusy
from meerkat.store import SessionStore
from meerkat.store.revisions import ForkRequest, TranscriptRewrite
from meerkat.store.sqlite import SCHEMA_VERSION, SqliteStore
from meerkat.transcript import PromptVersion, SystemMessage, UserMessage, encode_message

from test_store_suite import (  # noqa: F401  (fixtures)
    T0,
    Opener,
    disk_opener,
    make_commit,
    make_record,
    make_run,
    opener,
    run_rows,
    store,
    system_row,
    tool_rows,
)


def seeded(store: SessionStore, sid: str = "s1", runs: int = 3) -> list:
    """A session with a system row and ``runs`` committed runs (2 rows each)."""
    store.create_session(make_record(sid), [system_row()])
    for i in range(runs):
        run_id = f"{sid}-run{i}"
        store.begin_run(make_run(run_id, sid))
        store.commit_run(make_commit(run_id, sid, run_rows(run_id, f"answer {i}"), seq=i + 1))
    return store.read_messages(sid)


def rewrite(sid: str, start: int, end: int, rows: list, **kw: object) -> TranscriptRewrite:
    fields: dict = dict(session_id=sid, start=start, end=end, rows=rows, reason_kind="edit",
                        committed_at_ns=5_000_000_000_000)
    fields.update(kw)
    return TranscriptRewrite(**fields)


def user(text: str) -> UserMessage:
    return UserMessage(content=text, created_at=T0)


def encoded(rows: list) -> list[bytes]:
    return [encode_message(r) for r in rows]


def test_rewrite_replaces_a_range_as_a_new_revision_and_keeps_the_old(store: SessionStore) -> None:
    original = seeded(store)
    assert store.get_session("s1").transcript_revision == "r0"
    record, commit = store.rewrite_transcript(rewrite("s1", 1, 3, [user("edited question")]))
    assert (commit.revision, commit.parent_revision, commit.ordinal) == ("r1", "r0", 1)
    assert (commit.start, commit.end, commit.messages_before, commit.messages_after) == (1, 3, 7, 6)
    assert commit.original_span_digest.startswith("sha256:") and commit.original_span_digest != commit.replacement_digest
    assert record.transcript_revision == "r1" and record.message_count == 6
    now = store.read_messages("s1")
    assert encoded(now) == encoded([original[0], user("edited question"), *original[3:]])
    assert store.get_session("s1").message_count == 6
    # The old revision is still there, exactly.
    assert encoded(store.read_revision("s1", "r0")) == encoded(original)
    assert encoded(store.read_revision("s1", "r1")) == encoded(now)
    assert encoded(store.read_revision("s1", "r0", offset=2, limit=2)) == encoded(original[2:4])
    assert [c.revision for c in store.list_revisions("s1")] == ["r1"]
    assert store.read_revision("s1", "r9") is None
    assert store.read_revision("nope", "r0") is None


def test_restore_brings_the_original_rows_back_as_a_new_revision(store: SessionStore) -> None:
    original = seeded(store)
    store.rewrite_transcript(rewrite("s1", 1, 7, []))
    assert len(store.read_messages("s1")) == 1
    record, commit = store.rewrite_transcript(rewrite("s1", 0, 0, [], restore_from="r0", reason_kind="restore"))
    assert (commit.revision, commit.parent_revision, commit.restored_from) == ("r2", "r1", "r0")
    assert record.message_count == 7
    assert encoded(store.read_messages("s1")) == encoded(original)
    assert [c.revision for c in store.list_revisions("s1")] == ["r1", "r2"]
    assert len(store.read_revision("s1", "r1")) == 1  # the pruned revision stays readable too
    # Turns go on after a restore, appending to the head.
    store.begin_run(make_run("later", "s1"))
    store.commit_run(make_commit("later", "s1", run_rows("later", "more"), seq=10))
    assert store.get_session("s1").message_count == 9


def test_rewrite_checks_the_head_range_and_that_the_session_is_idle(store: SessionStore) -> None:
    seeded(store, runs=1)
    with pytest.raises(RevisionConflict) as conflict:
        store.rewrite_transcript(rewrite("s1", 0, 1, [], expected_parent_revision="r5"))
    assert conflict.value.details["current_revision"] == "r0"
    with pytest.raises(InvalidParams):
        store.rewrite_transcript(rewrite("s1", 2, 9, []))
    with pytest.raises(InvalidParams):
        store.rewrite_transcript(rewrite("s1", 0, 0, [], restore_from="r7"))
    with pytest.raises(KeyError):
        store.rewrite_transcript(rewrite("ghost", 0, 0, []))
    store.begin_run(make_run("busy", "s1"))
    with pytest.raises(SessionBusy):
        store.rewrite_transcript(rewrite("s1", 0, 1, []))
    with pytest.raises(SessionBusy):
        store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f1"), upto=1))
    store.commit_run(make_commit("busy", "s1", run_rows("busy", "x"), seq=9))
    record, _ = store.rewrite_transcript(rewrite("s1", 0, 1, [], expected_parent_revision="r0"))
    assert record.transcript_revision == "r1"
    assert store.get_session("s1").active_run_id is None


def test_rewriting_system_rows_changes_the_sessions_system_prompt(store: SessionStore) -> None:
    seeded(store, runs=1)
    assert store.get_session("s1").system_prompt == "be brief"
    versioned = SystemMessage(content="be verbose", created_at=T0, prompt_version=PromptVersion(key="main", version=1))
    store.rewrite_transcript(rewrite("s1", 0, 1, [versioned]))
    assert store.get_session("s1").system_prompt == "be verbose"
    row = store.read_messages("s1")[0]
    assert isinstance(row, SystemMessage) and row.prompt_version == PromptVersion(key="main", version=1)
    store.rewrite_transcript(rewrite("s1", 0, 1, []))
    assert store.get_session("s1").system_prompt is None


def test_fork_copies_exactly_the_prefix_and_leaves_the_source_alone(store: SessionStore) -> None:
    original = seeded(store)
    rows = tool_rows("t")
    store.begin_run(make_run("t", "s1"))
    store.commit_run(make_commit("t", "s1", rows, seq=9))
    original = store.read_messages("s1")
    before = store.get_session("s1")
    child = store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f1", updated=9000,
                                                                                       labels={"k": "v"}), upto=5))
    assert child.session_id == "f1" and child.message_count == 5
    assert (child.forked_from, child.forked_from_revision, child.fork_point) == ("s1", "r0", 5)
    assert child.system_prompt == "be brief" and child.labels == {"k": "v"}
    assert child.last_assistant_text == "answer 1"
    assert encoded(store.read_messages("f1")) == encoded(original[:5])
    assert store.get_session("f1").message_count == 5
    assert store.get_session("s1") == before
    assert encoded(store.read_messages("s1")) == encoded(original)
    # A turn on the fork leaves the source unchanged.
    store.begin_run(make_run("fr", "f1"))
    store.commit_run(make_commit("fr", "f1", run_rows("fr", "fork answer"), seq=3))
    assert len(store.read_messages("f1")) == 7
    assert encoded(store.read_messages("s1")) == encoded(original)
    # Whole copy, empty copy, copy with a replaced tail row.
    assert store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f2"),
                                          upto=len(original))).message_count == len(original)
    empty = store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f3"), upto=0))
    assert empty.message_count == 0 and empty.system_prompt is None and store.read_messages("f3") == []
    replaced = store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f4"), upto=3,
                                              tail=[user("other question")]))
    assert replaced.message_count == 4
    assert encoded(store.read_messages("f4")) == encoded([*original[:3], user("other question")])


def test_fork_refusals(store: SessionStore) -> None:
    seeded(store, runs=1)
    with pytest.raises(KeyError):
        store.fork_session(ForkRequest(source_session_id="ghost", record=make_record("f1"), upto=0))
    with pytest.raises(InvalidParams):
        store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f1"), upto=4))
    with pytest.raises(RevisionConflict):
        store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f1"), upto=1,
                                       expected_revision="r3"))
    with pytest.raises(ValueError):
        store.fork_session(ForkRequest(source_session_id="s1", record=make_record("s1"), upto=1))
    store.archive_session("s1")
    with pytest.raises(KeyError):
        store.fork_session(ForkRequest(source_session_id="s1", record=make_record("f1"), upto=1))
    assert store.get_session("f1") is None


def test_revisions_and_forks_survive_reopening_and_are_seen_by_other_instances(disk_opener: Opener) -> None:
    first, second = disk_opener(), disk_opener()
    original = seeded(first)
    second.get_session("s1")  # warm the other instance's view
    first.rewrite_transcript(rewrite("s1", 3, 5, [user("x")]))
    first.fork_session(ForkRequest(source_session_id="s1", record=make_record("f1"), upto=2))
    assert second.get_session("s1").transcript_revision == "r1"
    assert encoded(second.read_revision("s1", "r0")) == encoded(original)
    assert len(second.read_messages("f1")) == 2
    # The other instance rewrites on top: compare-and-set across instances.
    second.rewrite_transcript(rewrite("s1", 0, 0, [], restore_from="r0", expected_parent_revision="r1"))
    with pytest.raises(RevisionConflict):
        first.rewrite_transcript(rewrite("s1", 0, 1, [], expected_parent_revision="r1"))
    third = disk_opener()
    assert encoded(third.read_messages("s1")) == encoded(original)
    assert [(c.revision, c.parent_revision) for c in third.list_revisions("s1")] == [("r1", "r0"), ("r2", "r1")]
    assert third.get_session("f1").forked_from == "s1"


def test_sqlite_migrates_an_older_database_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    store = SqliteStore(path)
    seeded(store, runs=1)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE transcript_revisions")
    conn.execute("DROP TABLE revision_messages")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.commit()
    conn.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.get_session("s1").transcript_revision == "r0"
        reopened.rewrite_transcript(rewrite("s1", 0, 1, []))
        assert len(reopened.read_revision("s1", "r0")) == 3
    finally:
        reopened.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_records_without_revision_fields_read_as_r0() -> None:
    legacy = msgspec.json.encode({"session_id": "x", "created_at_ms": 1, "updated_at_ms": 1, "model": "m",
                                  "provider": "p"})
    from meerkat.store import SessionRecord
    record = msgspec.json.decode(legacy, type=SessionRecord)
    assert (record.transcript_revision, record.revision_count, record.forked_from) == ("r0", 0, None)
