"""SIGKILL a process in the middle of transcript rewrites: the head is the old revision or the new, never a mix.

A child process rewrites one session's whole transcript again and again (every
fourth commit restores an older revision), printing each revision right after
the store returned. The test kills it at a random instant, reopens the store and
checks that every reported revision is there, that each revision's rows are all
of that revision (labelled rows, counts as the commits say), that the revision
chain is unbroken, and that the store still takes a rewrite.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meerkat.store.revisions import TranscriptRewrite
from meerkat.transcript import UserMessage

KILLS = 8
REPO = Path(__file__).resolve().parent.parent

CHILD = r'''
import sys, time
from meerkat.store import SessionRecord
from meerkat.store.revisions import TranscriptRewrite
from meerkat.transcript import UserMessage

backend, path = sys.argv[1], sys.argv[2]
if backend == "postgres":
    from meerkat.store.postgres import PostgresStore
    store = PostgresStore(path, realm_id="crash")
elif backend == "sqlite":
    from meerkat.store.sqlite import SqliteStore
    store = SqliteStore(path)
else:
    from meerkat.store.jsonl import JsonlStore
    store = JsonlStore(path)
T0 = "2026-01-01T00:00:00.000+00:00"

def rows(label, n):
    return [UserMessage(content=f"{label}:{i}:" + "x" * 200, created_at=T0) for i in range(n)]

if store.get_session("s") is None:
    store.create_session(SessionRecord(session_id="s", created_at_ms=1, updated_at_ms=1, model="m", provider="p"),
                         rows("r0", 120))
print("ready", flush=True)
k = store.get_session("s").revision_count
while True:
    record = store.get_session("s")
    k = record.revision_count + 1
    if k % 4 == 0:
        rw = TranscriptRewrite(session_id="s", start=0, end=0, restore_from=f"r{k - 3}", reason_kind="restore",
                               committed_at_ns=time.time_ns())
    else:
        rw = TranscriptRewrite(session_id="s", start=0, end=record.message_count, rows=rows(f"r{k}", 100 + k % 50),
                               reason_kind="edit", committed_at_ns=time.time_ns(),
                               expected_parent_revision=record.transcript_revision)
    _, commit = store.rewrite_transcript(rw)
    print(commit.revision, flush=True)
'''


def open_store(backend: str, path: Path | str):
    if backend == "postgres":
        from meerkat.store.postgres import PostgresStore
        return PostgresStore(str(path), realm_id="crash")
    if backend == "sqlite":
        from meerkat.store.sqlite import SqliteStore
        return SqliteStore(path)
    from meerkat.store.jsonl import JsonlStore
    return JsonlStore(path)


def label_of(row: UserMessage) -> str:
    return str(row.content).split(":", 1)[0]


def check(store, before: list[str], printed: list[str]) -> list[str]:
    """Check the store after a kill; ``before``: the chain it held, ``printed``: what the child reported."""
    record = store.get_session("s")
    commits = store.list_revisions("s")
    names = [c.revision for c in commits]
    # Committed means durable; the chain is unbroken and the head is its last link.
    assert [c.ordinal for c in commits] == list(range(1, len(commits) + 1))
    assert names[:len(before)] == before
    if printed:  # the child went on from where the store was (plus maybe one commit its killed parent never printed)
        first = int(printed[0][1:])
        assert first in (len(before) + 1, len(before) + 2)
        assert names[first - 1:first - 1 + len(printed)] == printed
    assert record.transcript_revision == (commits[-1].revision if commits else "r0")
    assert record.revision_count == len(commits)
    labels = {"r0": "r0"}
    sizes = {"r0": 120}
    for c in commits:
        assert c.parent_revision == (f"r{c.ordinal - 1}")
        assert c.messages_before == sizes[c.parent_revision]
        labels[c.revision] = labels[c.restored_from] if c.restored_from else c.revision
        sizes[c.revision] = c.messages_after
    head = store.read_messages("s")
    assert record.message_count == len(head) == sizes[record.transcript_revision]
    assert {label_of(r) for r in head} == {labels[record.transcript_revision]}, "the head mixes two revisions"
    for revision, size in sizes.items():
        body = store.read_revision("s", revision)
        assert body is not None and len(body) == size, revision
        assert {label_of(r) for r in body} == {labels[revision]}, revision
    return [c.revision for c in commits]


@pytest.mark.parametrize("backend", ["sqlite", "jsonl", "postgres"])
def test_sigkill_during_rewrites_leaves_whole_revisions(backend: str, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    if backend == "postgres":
        path: Path | str = request.getfixturevalue("postgres_url")
    else:
        path = tmp_path / ("s.sqlite3" if backend == "sqlite" else "sessions")
    rng = random.Random(16)
    reported: list[str] = []
    written = 0
    for _ in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", CHILD, backend, str(path)], cwd=REPO,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.3))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        printed = [line for line in out.split() if line.startswith("r")]
        written += len(printed)
        store = open_store(backend, path)
        try:
            reported = check(store, reported, printed)
        finally:
            store.close()
    assert written > KILLS, "the child never got to rewrite"
    store = open_store(backend, path)
    try:
        record = store.get_session("s")
        store.rewrite_transcript(TranscriptRewrite(
            session_id="s", start=0, end=record.message_count, reason_kind="edit", committed_at_ns=time.time_ns(),
            rows=[UserMessage(content="final:0:", created_at="2026-01-01T00:00:00.000+00:00")]))
        assert [label_of(r) for r in store.read_messages("s")] == ["final"]
    finally:
        store.close()
