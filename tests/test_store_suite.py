"""One behaviour suite every session store backend passes, plus backend specifics."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

import msgspec
import pytest

from meerkat.errors import LeaseLost, SessionBusy, StoreError
from meerkat.store import MemoryStore, RunCommit, RunRecord, SessionRecord, SessionStore, open_store
from meerkat.store.jsonl import JsonlStore
from meerkat.store.postgres import PostgresStore
from meerkat.store.sqlite import SCHEMA_VERSION, SqliteStore
from meerkat.transcript import (
    BlockAssistantMessage,
    Message,
    SystemMessage,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
    reasoning_block,
    text_block,
    tool_use_block,
)
from meerkat.usage import Usage

BACKENDS = ["memory", "sqlite", "jsonl", "postgres"]
#: Backends whose data outlives a store instance and is shared by several (processes, hosts).
DISK_BACKENDS = ["sqlite", "jsonl", "postgres"]
T0 = "2026-01-02T03:04:05.678+00:00"


# -- fixtures -------------------------------------------------------------------


class Opener:
    """Opens store instances of one backend on one path or database (a new one each call)."""

    def __init__(self, backend: str, tmp_path: Path, database_url: str | None = None) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.opened: list[SessionStore] = []
        self._memory: MemoryStore | None = None

    def __call__(self) -> SessionStore:
        if self.backend == "memory":
            store: SessionStore = MemoryStore()
        elif self.backend == "sqlite":
            store = SqliteStore(self.tmp_path / "realm" / "sessions.sqlite3")
        elif self.backend == "postgres":
            assert self.database_url is not None
            store = PostgresStore(self.database_url, realm_id="test-realm")
        else:
            store = JsonlStore(self.tmp_path / "realm" / "sessions")
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


def _opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    # Only the postgres cases start the test server (and get a fresh database each).
    url = request.getfixturevalue("postgres_migrated_url") if request.param == "postgres" else None
    return Opener(request.param, tmp_path, url)


@pytest.fixture(params=BACKENDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    op = _opener(request, tmp_path)
    yield op
    op.close_all()


@pytest.fixture(params=DISK_BACKENDS)
def disk_opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    op = _opener(request, tmp_path)
    yield op
    op.close_all()


@pytest.fixture
def store(opener: Opener) -> SessionStore:
    return opener()


# -- builders -------------------------------------------------------------------


def make_record(session_id: str, updated: int = 1000, **kw: object) -> SessionRecord:
    fields: dict[str, object] = dict(
        session_id=session_id,
        created_at_ms=updated - 10,
        updated_at_ms=updated,
        model="claude-test",
        provider="anthropic",
        system_prompt="be brief",
        max_tokens=512,
        provider_params={"temperature": 0.5, "nested": {"k": [1, 2]}},
        labels={},
    )
    fields.update(kw)
    return SessionRecord(**fields)  # type: ignore[arg-type]


def system_row(text: str = "be brief") -> SystemMessage:
    return SystemMessage(content=text, created_at=T0)


def run_rows(run_id: str, text: str) -> list[Message]:
    """A user row and an assistant row tagged with ``run_id``."""
    return [
        UserMessage(content=f"question for {run_id}", created_at=T0, run_id=run_id),
        BlockAssistantMessage(
            blocks=[text_block(text)],
            stop_reason="end_turn",
            created_at=T0,
            assistant_message_id=f"am-{run_id}",
            run_id=run_id,
        ),
    ]


def tool_rows(run_id: str) -> list[Message]:
    """Every row type and block kind, with awkward content, for a round trip."""
    return [
        UserMessage(
            content=[{"type": "text", "text": "look at this"}, {"type": "image", "media_type": "image/png", "data": "aGk="}],
            created_at=T0,
            run_id=run_id,
        ),
        BlockAssistantMessage(
            blocks=[
                reasoning_block("thinking… ünïcödé \n newline"),
                text_block("calling a tool"),
                tool_use_block("call-1", "read_file", {"path": "/etc/hosts", "opts": {"n": 3, "x": None}}),
                tool_use_block("call-2", "search", {"q": "a\"quote\""}),
            ],
            stop_reason="tool_use",
            created_at=T0,
            assistant_message_id="am-1",
            run_id=run_id,
        ),
        ToolResultsMessage(
            results=[
                ToolResult(tool_use_id="call-1", content="127.0.0.1 localhost"),
                ToolResult(tool_use_id="call-2", content=[{"type": "text", "text": "nothing"}], is_error=True),
            ],
            created_at=T0,
            run_id=run_id,
        ),
        BlockAssistantMessage(
            blocks=[text_block("done: "), text_block("localhost")],
            stop_reason="end_turn",
            created_at=T0,
            run_id=run_id,
        ),
    ]


def make_run(run_id: str, session_id: str, started: int = 2000) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        session_id=session_id,
        status="running",
        started_at_ms=started,
        owner="testhost:1234",
        prompt=f"question for {run_id}",
    )


def make_commit(
    run_id: str,
    session_id: str,
    messages: list[Message],
    *,
    finished: int = 3000,
    usage: Usage | None = None,
    text: str | None = "answer",
    seq: int = 5,
    status: str = "completed",
    error: str | None = None,
    model: str = "claude-test",
    provider: str = "anthropic",
) -> RunCommit:
    return RunCommit(
        run_id=run_id,
        session_id=session_id,
        status=status,  # type: ignore[arg-type]
        messages=messages,
        usage=usage or Usage(input_tokens=10, output_tokens=20),
        last_assistant_text=text,
        last_seq=seq,
        finished_at_ms=finished,
        model=model,
        provider=provider,
        error=error,
    )


def ids(records: list[SessionRecord]) -> list[str]:
    return [r.session_id for r in records]


# -- the shared suite -------------------------------------------------------------


def test_backend_attributes(store: SessionStore, opener: Opener) -> None:
    assert store.backend == opener.backend
    assert store.blocking is (opener.backend != "memory")


def test_create_and_get_round_trip(store: SessionStore) -> None:
    record = make_record("s1", labels={"team": "a"}, instance_id="inst-1", budget_max_tokens=9000)
    store.create_session(record, [system_row()])
    got = store.get_session("s1")
    assert got == msgspec.structs.replace(record, message_count=1)
    assert got.provider_params == {"temperature": 0.5, "nested": {"k": [1, 2]}}
    assert got.labels == {"team": "a"}
    assert got.instance_id == "inst-1"
    assert got.budget_max_tokens == 9000
    assert got.usage == Usage()
    assert got.active_run_id is None and got.archived is False
    assert store.read_messages("s1") == [system_row()]


def test_create_sets_message_count_from_rows(store: SessionStore) -> None:
    store.create_session(make_record("s1", message_count=99), [system_row(), *run_rows("r0", "hi")])
    assert store.get_session("s1").message_count == 3
    store.create_session(make_record("s2"), [])
    assert store.get_session("s2").message_count == 0
    assert store.read_messages("s2") == []


def test_create_duplicate_raises_and_keeps_original(store: SessionStore) -> None:
    store.create_session(make_record("s1", model="first"), [system_row("one")])
    with pytest.raises(ValueError):
        store.create_session(make_record("s1", model="second"), [system_row("two")])
    assert store.get_session("s1").model == "first"
    assert store.read_messages("s1") == [system_row("one")]


def test_unknown_session(store: SessionStore) -> None:
    assert store.get_session("nope") is None
    assert store.get_session("nope", include_archived=True) is None
    assert store.read_messages("nope") == []
    assert store.archive_session("nope") is False
    assert store.list_sessions(limit=10, offset=0) == []
    assert store.open_runs() == []
    assert store.get_run("r-nope") is None
    with pytest.raises(KeyError):
        store.begin_run(make_run("r1", "nope"))
    with pytest.raises(KeyError):
        store.commit_run(make_commit("r1", "nope", []))
    assert store.get_run("r1") is None


def test_list_orders_by_updated_desc_then_id_desc(store: SessionStore) -> None:
    for sid, updated in [("a", 100), ("b", 300), ("c", 200), ("d", 300), ("e", 50)]:
        store.create_session(make_record(sid, updated), [])
    assert ids(store.list_sessions(limit=100, offset=0)) == ["d", "b", "c", "a", "e"]
    # A run bumps updated_at_ms and moves the session up.
    store.begin_run(make_run("r1", "e", started=400))
    assert ids(store.list_sessions(limit=100, offset=0)) == ["e", "d", "b", "c", "a"]
    store.commit_run(make_commit("r1", "e", run_rows("r1", "x"), finished=350))  # max(), never back
    assert store.get_session("e").updated_at_ms == 400
    store.commit_run(make_commit("r9", "a", [], finished=500))
    assert ids(store.list_sessions(limit=100, offset=0)) == ["a", "e", "d", "b", "c"]


def test_list_paging(store: SessionStore) -> None:
    for i in range(7):
        store.create_session(make_record(f"s{i}", 1000 + i), [])
    everything = ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]
    assert ids(store.list_sessions(limit=100, offset=0)) == everything
    assert ids(store.list_sessions(limit=3, offset=0)) == everything[0:3]
    assert ids(store.list_sessions(limit=3, offset=3)) == everything[3:6]
    assert ids(store.list_sessions(limit=3, offset=6)) == everything[6:]
    assert store.list_sessions(limit=3, offset=7) == []
    assert store.list_sessions(limit=0, offset=0) == []
    pages = [ids(store.list_sessions(limit=2, offset=o)) for o in range(0, 8, 2)]
    assert sum(pages, []) == everything


def test_list_label_filters(store: SessionStore) -> None:
    specs = {
        "s0": {"team": "a", "env": "prod"},
        "s1": {"team": "a", "env": "dev"},
        "s2": {"team": "b", "env": "prod"},
        "s3": {"team": "a", "env": "prod", "extra": "1"},
        "s4": {},
        "s5": {"team": "a"},
        "s6": {"team": "a", "env": "prod"},
    }
    for i, (sid, labels) in enumerate(specs.items()):
        store.create_session(make_record(sid, 1000 + i, labels=labels), [])
    both = {"team": "a", "env": "prod"}
    assert ids(store.list_sessions(limit=100, offset=0, labels=both)) == ["s6", "s3", "s0"]
    assert ids(store.list_sessions(limit=100, offset=0, labels={"team": "a"})) == ["s6", "s5", "s3", "s1", "s0"]
    assert ids(store.list_sessions(limit=100, offset=0, labels={"env": "prod"})) == ["s6", "s3", "s2", "s0"]
    assert ids(store.list_sessions(limit=100, offset=0, labels={"team": "c"})) == []
    assert ids(store.list_sessions(limit=100, offset=0, labels={"team": "a", "env": "nope"})) == []
    assert len(store.list_sessions(limit=100, offset=0, labels={})) == 7
    assert len(store.list_sessions(limit=100, offset=0, labels=None)) == 7
    # Paging applies after the filter.
    assert ids(store.list_sessions(limit=2, offset=0, labels=both)) == ["s6", "s3"]
    assert ids(store.list_sessions(limit=2, offset=1, labels=both)) == ["s3", "s0"]
    assert ids(store.list_sessions(limit=2, offset=2, labels=both)) == ["s0"]
    assert ids(store.list_sessions(limit=2, offset=3, labels=both)) == []
    assert ids(store.list_sessions(limit=1, offset=3, labels={"team": "a"})) == ["s1"]


def test_archive(store: SessionStore) -> None:
    store.create_session(make_record("s1", 100, labels={"k": "v"}), [system_row()])
    store.create_session(make_record("s2", 200, labels={"k": "v"}), [])
    store.create_session(make_record("s3", 300, labels={"k": "v"}), [])
    assert store.archive_session("s2") is True
    assert store.archive_session("s2") is False
    assert store.get_session("s2") is None
    archived = store.get_session("s2", include_archived=True)
    assert archived is not None and archived.archived is True and archived.session_id == "s2"
    assert store.get_session("s1", include_archived=True).archived is False
    assert ids(store.list_sessions(limit=10, offset=0)) == ["s3", "s1"]
    assert ids(store.list_sessions(limit=1, offset=1, labels={"k": "v"})) == ["s1"]
    store.archive_session("s1")
    assert store.read_messages("s1") == [system_row()]
    assert ids(store.list_sessions(limit=10, offset=0)) == ["s3"]


def test_begin_run_is_a_compare_and_set(store: SessionStore) -> None:
    store.create_session(make_record("s1", 1000), [system_row()])
    store.begin_run(make_run("r1", "s1", started=2000))
    record = store.get_session("s1")
    assert record.active_run_id == "r1"
    assert record.updated_at_ms == 2000
    with pytest.raises(SessionBusy) as info:
        store.begin_run(make_run("r2", "s1", started=2500))
    assert info.value.running_run_id == "r1"
    assert info.value.session_id == "s1"
    assert store.get_run("r2") is None
    assert store.get_session("s1").active_run_id == "r1"
    assert store.get_session("s1").updated_at_ms == 2000
    store.commit_run(make_commit("r1", "s1", run_rows("r1", "one"), finished=3000))
    assert store.get_session("s1").active_run_id is None
    store.begin_run(make_run("r2", "s1", started=3500))
    assert store.get_session("s1").active_run_id == "r2"


def test_a_run_stamped_before_the_last_run_ended_starts_after_it(opener: Opener) -> None:
    """A host stamps a run's start before its begin reaches the store: one that waited there
    (or a host whose clock is behind) must not seem to start before the run that ended first."""
    store = opener()
    store.create_session(make_record("s1", 1000), [system_row()])
    store.begin_run(make_run("r1", "s1", started=2000))
    store.commit_run(make_commit("r1", "s1", run_rows("r1", "one"), finished=3000))
    late = make_run("r2", "s1", started=1900)  # stamped before r1 began, taken after r1 ended
    store.begin_run(late)
    reopened = [opener()] if opener.backend != "memory" else []
    for view in (store, *reopened):
        assert view.get_run("r2").started_at_ms == 3000 == view.get_session("s1").updated_at_ms
        assert view.get_run("r1").started_at_ms <= view.get_run("r2").started_at_ms


def test_begin_run_on_other_sessions_is_independent(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    store.create_session(make_record("s2"), [])
    store.begin_run(make_run("r1", "s1"))
    store.begin_run(make_run("r2", "s2"))
    assert store.get_session("s1").active_run_id == "r1"
    assert store.get_session("s2").active_run_id == "r2"


def test_commit_appends_rows_and_updates_record(store: SessionStore) -> None:
    store.create_session(make_record("s1", 1000), [system_row()])
    store.begin_run(make_run("r1", "s1", started=2000))
    usage1 = Usage(input_tokens=11, output_tokens=22, cache_creation_tokens=3, cache_read_tokens=4, reasoning_tokens=5)
    returned = store.commit_run(
        make_commit("r1", "s1", run_rows("r1", "first"), finished=3000, usage=usage1, text="first", seq=7)
    )
    got = store.get_session("s1")
    assert returned == got
    assert got.usage == usage1
    assert got.message_count == 3
    assert got.last_assistant_text == "first"
    assert got.last_seq == 7
    assert got.updated_at_ms == 3000
    assert got.active_run_id is None
    assert store.read_messages("s1") == [system_row(), *run_rows("r1", "first")]

    # A second run: text None keeps the previous text, last_seq never goes back,
    # model/provider follow the commit.
    store.begin_run(make_run("r2", "s1", started=4000))
    usage2 = Usage(input_tokens=50, output_tokens=60)
    returned = store.commit_run(
        make_commit(
            "r2", "s1", tool_rows("r2"), finished=5000, usage=usage2, text=None, seq=3,
            model="gpt-test", provider="openai",
        )
    )
    got = store.get_session("s1")
    assert returned == got
    assert got.usage == usage2
    assert got.message_count == 7
    assert got.last_assistant_text == "first"
    assert got.last_seq == 7
    assert got.model == "gpt-test" and got.provider == "openai"
    assert got.updated_at_ms == 5000
    assert store.read_messages("s1") == [system_row(), *run_rows("r1", "first"), *tool_rows("r2")]


def test_commit_of_other_run_keeps_active_run(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    store.begin_run(make_run("r1", "s1"))
    store.commit_run(make_commit("r-other", "s1", run_rows("r-other", "x")))
    got = store.get_session("s1")
    assert got.active_run_id == "r1"
    assert got.message_count == 2
    assert store.get_run("r1").status == "running"
    assert store.get_run("r-other") is None


def test_rows_round_trip_exactly(store: SessionStore) -> None:
    initial = [system_row("sys ✓"), UserMessage(content="plain", created_at=T0)]
    store.create_session(make_record("s1"), initial)
    store.begin_run(make_run("r1", "s1"))
    store.commit_run(make_commit("r1", "s1", tool_rows("r1")))
    rows = store.read_messages("s1")
    assert rows == [*initial, *tool_rows("r1")]
    assert [type(r) for r in rows] == [
        SystemMessage, UserMessage, UserMessage, BlockAssistantMessage, ToolResultsMessage, BlockAssistantMessage,
    ]
    tool_use = rows[3].blocks[2]
    assert tool_use.block_type == "tool_use"
    assert tool_use.data == {"id": "call-1", "name": "read_file", "args": {"path": "/etc/hosts", "opts": {"n": 3, "x": None}}}
    assert rows[4].results[1].is_error is True
    assert rows[4].results[1].content == [{"type": "text", "text": "nothing"}]
    assert rows[2].content[1]["data"] == "aGk="
    assert rows[1].run_id is None


def test_read_messages_paging(store: SessionStore) -> None:
    rows = [system_row(), *run_rows("r1", "a"), *run_rows("r2", "b")]
    store.create_session(make_record("s1"), rows)
    assert store.read_messages("s1") == rows
    assert store.read_messages("s1", offset=1) == rows[1:]
    assert store.read_messages("s1", offset=1, limit=2) == rows[1:3]
    assert store.read_messages("s1", offset=4, limit=10) == rows[4:]
    assert store.read_messages("s1", offset=5) == []
    assert store.read_messages("s1", limit=0) == []


def test_runs_open_and_get(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    store.create_session(make_record("s2"), [])
    store.create_session(make_record("s3"), [])
    r1, r2, r3 = make_run("r1", "s1", 2001), make_run("r2", "s2", 2002), make_run("r3", "s3", 2003)
    for run in (r1, r2, r3):
        store.begin_run(run)
    assert {r.run_id for r in store.open_runs()} == {"r1", "r2", "r3"}
    assert store.get_run("r2") == r2
    store.commit_run(make_commit("r2", "s2", run_rows("r2", "ok"), finished=4000))
    store.commit_run(make_commit("r3", "s3", [], finished=4100, status="failed", error="provider exploded"))
    assert [r.run_id for r in store.open_runs()] == ["r1"]
    assert store.open_runs() == [r1]
    done = store.get_run("r2")
    assert done == msgspec.structs.replace(r2, status="completed", finished_at_ms=4000)
    failed = store.get_run("r3")
    assert failed.status == "failed" and failed.error == "provider exploded" and failed.finished_at_ms == 4100
    assert store.get_session("s3").active_run_id is None
    # Runs of archived sessions stay visible (reconciliation still needs them).
    store.archive_session("s1")
    assert [r.run_id for r in store.open_runs()] == ["r1"]
    assert store.get_run("r1") == r1


def test_run_prompt_blocks_round_trip(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    run = msgspec.structs.replace(make_run("r1", "s1"), prompt=[{"type": "text", "text": "hi"}, {"type": "image", "data": "x"}])
    store.begin_run(run)
    assert store.get_run("r1") == run
    assert store.open_runs() == [run]


def test_returned_records_are_copies(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    got = store.get_session("s1")
    got.model = "mutated"
    got.archived = True
    assert store.get_session("s1").model == "claude-test"
    listed = store.list_sessions(limit=1, offset=0)[0]
    listed.last_seq = 999
    assert store.get_session("s1").last_seq == 0


# -- persistence and several instances on one path ---------------------------------


def populate(store: SessionStore) -> None:
    store.create_session(make_record("s1", 100, labels={"team": "a"}), [system_row()])
    store.create_session(make_record("s2", 200, labels={"team": "b"}), [])
    store.create_session(make_record("s3", 300), [])
    store.begin_run(make_run("r1", "s1", 1000))
    store.commit_run(make_commit("r1", "s1", tool_rows("r1"), finished=1100, text="localhost", seq=4))
    store.begin_run(make_run("r2", "s2", 1200))
    store.archive_session("s3")


def test_reopen_keeps_everything(disk_opener: Opener) -> None:
    first = disk_opener()
    populate(first)
    before = (
        first.list_sessions(limit=10, offset=0),
        first.get_session("s3", include_archived=True),
        first.read_messages("s1"),
        first.open_runs(),
        first.get_run("r1"),
    )
    first.close()
    second = disk_opener()
    after = (
        second.list_sessions(limit=10, offset=0),
        second.get_session("s3", include_archived=True),
        second.read_messages("s1"),
        second.open_runs(),
        second.get_run("r1"),
    )
    assert after == before
    assert ids(after[0]) == ["s2", "s1"]
    s1 = second.get_session("s1")
    assert s1.message_count == 5 and s1.last_assistant_text == "localhost" and s1.last_seq == 4
    assert second.read_messages("s1") == [system_row(), *tool_rows("r1")]
    assert second.get_session("s2").active_run_id == "r2"
    assert second.get_session("s3") is None and after[1].archived is True
    assert [r.run_id for r in after[3]] == ["r2"]
    assert after[4].status == "completed"
    # Still writable after reopening, and the busy state survived.
    with pytest.raises(SessionBusy) as info:
        second.begin_run(make_run("r3", "s2"))
    assert info.value.running_run_id == "r2"
    second.commit_run(make_commit("r2", "s2", run_rows("r2", "late"), finished=1300))
    assert second.read_messages("s2") == run_rows("r2", "late")
    second.close()
    third = disk_opener()
    assert third.get_session("s2").message_count == 2
    assert third.open_runs() == []


def test_open_store_factory(disk_opener: Opener, tmp_path: Path) -> None:
    store = open_store(
        disk_opener.backend, sqlite_path=tmp_path / "f" / "db.sqlite3", jsonl_dir=tmp_path / "f" / "jsonl",
        database_url=disk_opener.database_url, realm_id="factory-realm",
    )
    disk_opener.opened.append(store)
    assert store.backend == disk_opener.backend
    store.create_session(make_record("s1"), [])
    assert ids(store.list_sessions(limit=5, offset=0)) == ["s1"]


def test_two_instances_see_each_others_writes(disk_opener: Opener) -> None:
    a, b = disk_opener(), disk_opener()
    a.create_session(make_record("s1", 100), [system_row()])
    assert b.get_session("s1").message_count == 1  # b caches s1 now
    b.begin_run(make_run("r1", "s1", 200))
    assert a.get_session("s1").active_run_id == "r1"
    assert a.get_run("r1").status == "running"
    a.commit_run(make_commit("r1", "s1", run_rows("r1", "from a"), finished=300, text="from a"))
    got = b.get_session("s1")
    assert got.message_count == 3 and got.last_assistant_text == "from a" and got.active_run_id is None
    assert b.read_messages("s1") == [system_row(), *run_rows("r1", "from a")]
    assert b.get_run("r1").status == "completed"
    b.create_session(make_record("s2", 400), [])
    assert ids(a.list_sessions(limit=10, offset=0)) == ["s2", "s1"]
    b.archive_session("s1")
    assert ids(a.list_sessions(limit=10, offset=0)) == ["s2"]
    assert a.archive_session("s1") is False


def test_begin_run_cas_across_instances(disk_opener: Opener) -> None:
    a, b = disk_opener(), disk_opener()
    a.create_session(make_record("s1"), [])
    assert b.get_session("s1").active_run_id is None  # b has seen it idle
    a.begin_run(make_run("r1", "s1"))
    with pytest.raises(SessionBusy) as info:
        b.begin_run(make_run("r2", "s1"))
    assert info.value.running_run_id == "r1"
    assert b.get_run("r2") is None
    assert [r.run_id for r in a.open_runs()] == ["r1"]


def test_begin_run_race_has_one_winner(disk_opener: Opener) -> None:
    first = disk_opener()
    first.create_session(make_record("s1"), [])
    stores = [disk_opener() for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    won: list[str] = []
    busy: list[str] = []

    def contend(i: int, store: SessionStore) -> None:
        barrier.wait()
        try:
            store.begin_run(make_run(f"r{i}", "s1"))
            won.append(f"r{i}")
        except SessionBusy as exc:
            busy.append(exc.running_run_id)

    threads = [threading.Thread(target=contend, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert busy == [won[0]] * (len(stores) - 1)
    assert first.get_session("s1").active_run_id == won[0]
    assert [r.run_id for r in first.open_runs()] == won


def test_concurrent_commits_from_threads_keep_every_row(disk_opener: Opener) -> None:
    store = disk_opener()
    sessions = [f"s{i}" for i in range(4)]
    for sid in sessions:
        store.create_session(make_record(sid), [])

    def work(sid: str) -> None:
        for n in range(10):
            run_id = f"{sid}-r{n}"
            store.begin_run(make_run(run_id, sid))
            store.commit_run(make_commit(run_id, sid, run_rows(run_id, str(n)), seq=n))

    threads = [threading.Thread(target=work, args=(sid,)) for sid in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sid in sessions:
        rows = store.read_messages(sid)
        assert rows == [row for n in range(10) for row in run_rows(f"{sid}-r{n}", str(n))]
        assert store.get_session(sid).message_count == 20
        assert store.get_session(sid).last_seq == 9


# -- sqlite specifics -------------------------------------------------------------------


def test_sqlite_uses_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "db.sqlite3"
    store = SqliteStore(path)
    try:
        store.create_session(make_record("s1"), [])
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    finally:
        store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"sessions", "messages", "runs"} <= tables
        assert conn.execute("SELECT idx FROM messages").fetchall() == []
        assert conn.execute("SELECT session_id, archived, active_run_id FROM sessions").fetchall() == [("s1", 0, None)]
        plan = " ".join(
            str(r[-1])
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT record FROM sessions WHERE archived = 0"
                " ORDER BY updated_at_ms DESC, session_id DESC"
            )
        )
        assert "sessions_live_order" in plan and "TEMP B-TREE" not in plan
    finally:
        conn.close()


def test_sqlite_errors_become_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        SqliteStore(path)
    assert str(path) in info.value.message
    store = SqliteStore(tmp_path / "ok.sqlite3")
    store.close()
    with pytest.raises(StoreError):
        store.get_session("s1")


def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(path)


def test_sqlite_failed_write_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "db.sqlite3")
    try:
        store.create_session(make_record("s1"), [])
        store.begin_run(make_run("r1", "s1"))
        # Fail inside the transaction after the rows were inserted: nothing of
        # the commit may remain, and the error is a StoreError naming the file.
        real = SqliteStore._put_session

        def failing(conn: sqlite3.Connection, record: SessionRecord, *, insert: bool) -> None:
            assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2
            raise sqlite3.OperationalError("disk I/O error (simulated)")

        monkeypatch.setattr(SqliteStore, "_put_session", staticmethod(failing))
        with pytest.raises(StoreError, match="simulated") as info:
            store.commit_run(make_commit("r1", "s1", run_rows("r1", "x")))
        assert str(tmp_path / "db.sqlite3") in info.value.message
        monkeypatch.setattr(SqliteStore, "_put_session", staticmethod(real))
        assert store.read_messages("s1") == []
        got = store.get_session("s1")
        assert got.active_run_id == "r1" and got.message_count == 0
        assert store.get_run("r1").status == "running"
        store.commit_run(make_commit("r1", "s1", run_rows("r1", "x")))
        assert store.read_messages("s1") == run_rows("r1", "x")
        assert store.get_run("r1").status == "completed"
    finally:
        store.close()


# -- jsonl specifics ---------------------------------------------------------------------


def jsonl_lines(directory: Path, session_id: str) -> list[bytes]:
    return (directory / f"{session_id}.jsonl").read_bytes().split(b"\n")


def test_jsonl_files_are_readable_json_lines(tmp_path: Path) -> None:
    store = JsonlStore(tmp_path / "j")
    store.create_session(make_record("s1", labels={"team": "a"}), [system_row()])
    store.begin_run(make_run("r1", "s1"))
    store.commit_run(make_commit("r1", "s1", run_rows("r1", "hello")))
    assert store.archive_session("s1") is True
    assert store.archive_session("s1") is False  # no line for a no-op
    raw = (tmp_path / "j" / "s1.jsonl").read_text("utf-8")
    assert raw.endswith("\n")
    lines = [json.loads(line) for line in raw.splitlines()]
    assert [line["op"] for line in lines] == ["create", "begin_run", "commit", "archive"]
    assert lines[0]["record"]["session_id"] == "s1"
    assert lines[0]["record"]["labels"] == {"team": "a"}
    assert lines[0]["messages"] == [{"role": "system", "content": "be brief", "created_at": T0}]
    assert lines[1]["run"]["run_id"] == "r1" and lines[1]["run"]["status"] == "running"
    assert lines[2]["commit"]["messages"][1]["blocks"] == [{"block_type": "text", "data": {"text": "hello"}}]
    assert isinstance(lines[3]["at_ms"], int) and lines[3]["at_ms"] > 1_600_000_000_000
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == ["s1.jsonl"]


def test_jsonl_torn_last_line_is_ignored_and_repaired(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    store = JsonlStore(directory)
    store.create_session(make_record("s1"), [system_row()])
    store.begin_run(make_run("r1", "s1"))
    store.commit_run(make_commit("r1", "s1", run_rows("r1", "kept")))
    store.begin_run(make_run("r2", "s1"))
    path = directory / "s1.jsonl"
    whole = path.read_bytes()
    # Simulate a writer killed mid-write: half a commit line, no newline.
    commit_line = msgspec.json.encode({"op": "commit", "commit": make_commit("r2", "s1", run_rows("r2", "lost"))})
    with open(path, "ab") as fh:
        fh.write(commit_line[: len(commit_line) // 2])

    fresh = JsonlStore(directory)
    for s in (store, fresh):
        assert s.read_messages("s1") == [system_row(), *run_rows("r1", "kept")]
        assert s.get_session("s1").active_run_id == "r2"
        assert s.get_run("r2").status == "running"

    # The next append ends the fragment's line first and lands whole.
    fresh.commit_run(make_commit("r2", "s1", run_rows("r2", "after"), seq=9))
    lines = jsonl_lines(directory, "s1")
    assert lines[-1] == b""
    assert lines[-3].startswith(commit_line[:20]) and lines[-3].endswith(b"#torn")
    assert json.loads(lines[-2])["op"] == "commit"
    assert path.read_bytes().startswith(whole)
    for s in (store, fresh, JsonlStore(directory)):
        assert s.read_messages("s1") == [system_row(), *run_rows("r1", "kept"), *run_rows("r2", "after")]
        got = s.get_session("s1")
        assert got.message_count == 5 and got.active_run_id is None and got.last_seq == 9
        assert s.get_run("r2").status == "completed"


def test_jsonl_fragment_missing_only_its_newline_never_counts(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    store = JsonlStore(directory)
    store.create_session(make_record("s1"), [])
    path = directory / "s1.jsonl"
    # A whole line whose newline never made it: the writer never returned, so it
    # must not count, neither now nor after the next append ends its line.
    begin = msgspec.json.encode({"op": "begin_run", "run": make_run("r-ghost", "s1")})
    with open(path, "ab") as fh:
        fh.write(begin)
    assert store.get_session("s1").active_run_id is None
    store.begin_run(make_run("r1", "s1"))
    for s in (store, JsonlStore(directory)):
        assert s.get_session("s1").active_run_id == "r1"
        assert s.get_run("r-ghost") is None
        assert [r.run_id for r in s.open_runs()] == ["r1"]


def test_jsonl_torn_create_allows_create(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    directory.mkdir()
    (directory / "s1.jsonl").write_bytes(b'{"op":"create","rec')
    store = JsonlStore(directory)
    assert store.get_session("s1") is None
    assert store.list_sessions(limit=10, offset=0) == []
    with pytest.raises(KeyError):
        store.begin_run(make_run("r1", "s1"))
    assert store.archive_session("s1") is False
    store.create_session(make_record("s1"), [system_row()])
    assert store.get_session("s1").message_count == 1
    assert JsonlStore(directory).read_messages("s1") == [system_row()]


def test_jsonl_damaged_line_is_skipped(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    store = JsonlStore(directory)
    store.create_session(make_record("s1"), [])
    with open(directory / "s1.jsonl", "ab") as fh:
        fh.write(b"\x00\x00\x00 not json\n")
        fh.write(b'{"op":"mystery","x":1}\n')
    store.begin_run(make_run("r1", "s1"))
    store.commit_run(make_commit("r1", "s1", run_rows("r1", "ok")))
    assert JsonlStore(directory).read_messages("s1") == run_rows("r1", "ok")


def test_jsonl_unsafe_ids_are_not_files(tmp_path: Path) -> None:
    store = JsonlStore(tmp_path / "j")
    for bad in ["../escape", "a/b", ".hidden", ""]:
        with pytest.raises(ValueError):
            store.create_session(make_record(bad), [])
        assert store.get_session(bad) is None
        assert store.read_messages(bad) == []
        with pytest.raises(KeyError):
            store.begin_run(make_run("r1", bad))
    assert list(tmp_path.iterdir()) == [tmp_path / "j"]
    assert list((tmp_path / "j").iterdir()) == []


def test_jsonl_io_errors_become_store_errors(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    store = JsonlStore(directory)
    store.create_session(make_record("s1"), [])
    # A directory where a session file should be: opening it for append fails.
    (directory / "s2.jsonl").mkdir()
    with pytest.raises(StoreError) as info:
        store.create_session(make_record("s2"), [])
    assert str(directory) in info.value.message
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        JsonlStore(blocker / "sub")


def test_jsonl_cache_rereads_only_on_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "j"
    a, b = JsonlStore(directory), JsonlStore(directory)
    a.create_session(make_record("s1"), [system_row()])
    assert b.get_session("s1") is not None
    reads: list[int] = []
    real_pread = __import__("os").pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return real_pread(fd, n, offset)

    monkeypatch.setattr("meerkat.store.jsonl.os.pread", counting_pread)
    for _ in range(5):
        assert b.get_session("s1").message_count == 1
    assert reads == []
    size_before = (directory / "s1.jsonl").stat().st_size
    a.begin_run(make_run("r1", "s1"))
    reads.clear()
    assert b.get_session("s1").active_run_id == "r1"
    # Only the appended line was read, not the whole file again.
    assert reads == [(directory / "s1.jsonl").stat().st_size - size_before]


# -- leases: one run's hold on its session, across processes ---------------------------


def leased_run(run_id: str, session_id: str, owner: str = "testhost:1234", expires: int = 10_000) -> RunRecord:
    run = make_run(run_id, session_id)
    run.owner = owner
    run.lease_expires_at_ms = expires
    return run


def test_renewal_extends_only_the_owners_running_runs(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    store.create_session(make_record("s2"), [])
    store.begin_run(leased_run("r1", "s1"))
    store.begin_run(leased_run("r2", "s2", owner="other:99"))
    report = store.renew_leases("testhost:1234", [("s1", "r1"), ("s2", "r2"), ("s1", "gone")], 50_000)
    assert report.lost == {"r2", "gone"}
    assert report.interrupt_requested == frozenset()
    assert store.get_run("r1").lease_expires_at_ms == 50_000
    assert store.get_run("r2").lease_expires_at_ms == 10_000  # someone else's: untouched


def test_an_interrupt_request_reaches_the_owner_at_its_next_renewal(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    store.begin_run(leased_run("r1", "s1"))
    assert store.request_interrupt("s1", "r1") is True
    assert store.request_interrupt("s1", "nope") is False
    report = store.renew_leases("testhost:1234", [("s1", "r1")], 20_000)
    assert report.interrupt_requested == {"r1"} and report.lost == frozenset()


def test_a_live_unexpired_run_is_not_stale(store: SessionStore) -> None:
    store.create_session(make_record("s1"), [])
    store.begin_run(leased_run("r1", "s1", expires=10_000))
    assert store.close_stale_run("s1", "r1", now_ms=9_999, owner_dead=False, reason="x") is False
    assert store.get_session("s1").active_run_id == "r1"
    with pytest.raises(SessionBusy):
        store.begin_run(leased_run("r2", "s1"))


@pytest.mark.parametrize("why", ["expired", "owner_dead"])
def test_a_stale_run_is_closed_as_interrupted_once_and_its_late_commit_refused(store: SessionStore, why: str) -> None:
    store.create_session(make_record("s1"), [system_row()])
    store.begin_run(leased_run("r0", "s1"))
    store.commit_run(make_commit("r0", "s1", run_rows("r0", "first"), seq=7))
    run = leased_run("r1", "s1", expires=10_000)
    run.seq_start = 7
    store.begin_run(run)
    now = 10_000 if why == "expired" else 5_000
    assert store.close_stale_run("s1", "r1", now_ms=now, owner_dead=why == "owner_dead", reason="gone") is True
    assert store.close_stale_run("s1", "r1", now_ms=now, owner_dead=True, reason="again") is False  # only once
    record = store.get_session("s1")
    assert record.active_run_id is None
    assert record.message_count == 5
    assert record.last_assistant_text == "answer"  # the last completed answer stays
    assert record.last_seq >= 7 + 1_000_000  # past any event the lost owner may have numbered
    rows = store.read_messages("s1")
    assert isinstance(rows[3], UserMessage) and rows[3].content == "question for r1" and rows[3].run_id == "r1"
    assert isinstance(rows[4], BlockAssistantMessage) and rows[4].blocks == [] and rows[4].stop_reason == "cancelled"
    closed = store.get_run("r1")
    assert closed.status == "interrupted" and "gone" in (closed.error or "")
    # The owner wakes up and tries to commit: refused, nothing appended twice.
    with pytest.raises(LeaseLost):
        store.commit_run(make_commit("r1", "s1", run_rows("r1", "late")))
    assert store.get_session("s1").message_count == 5
    assert store.renew_leases("testhost:1234", [("s1", "r1")], 99_000).lost == {"r1"}
    # and the session is free for the next run
    store.begin_run(leased_run("r2", "s1"))


def test_leases_are_shared_between_store_instances(disk_opener: Opener) -> None:
    """Two processes' views of one realm: a renewal or request by one is seen by the other."""
    first, second = disk_opener(), disk_opener()
    first.create_session(make_record("s1"), [])
    first.begin_run(leased_run("r1", "s1", expires=10_000))
    assert second.request_interrupt("s1", "r1") is True
    assert first.renew_leases("testhost:1234", [("s1", "r1")], 60_000).interrupt_requested == {"r1"}
    assert second.close_stale_run("s1", "r1", now_ms=30_000, owner_dead=False, reason="x") is False
    assert second.close_stale_run("s1", "r1", now_ms=60_000, owner_dead=False, reason="x") is True
    with pytest.raises(LeaseLost):
        first.commit_run(make_commit("r1", "s1", run_rows("r1", "late")))
    assert first.get_session("s1").active_run_id is None


def test_change_stamp_moves_with_any_instances_write(disk_opener: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fingerprint a process uses to skip re-reading a session: any write, by any instance, changes it."""
    import meerkat.store.base as base

    monkeypatch.setattr(base, "SETTLED_NS", 0)  # trust mtimes at once; the settling rule is tested below
    first, second = disk_opener(), disk_opener()

    def stamp_of(store: SessionStore) -> object:
        if isinstance(store, PostgresStore):
            # No stamp without a round trip (callers then read in a worker thread); the version counter moves.
            assert store.change_stamp("s1") is None
            return store.session_version("s1")
        return store.change_stamp("s1")

    first.create_session(make_record("s1"), [])
    stamp = stamp_of(first)
    assert stamp is not None and stamp_of(first) == stamp
    second.begin_run(make_run("r1", "s1"))
    after_begin = stamp_of(first)
    assert after_begin != stamp
    second.commit_run(make_commit("r1", "s1", run_rows("r1", "x")))
    assert stamp_of(first) not in (stamp, after_begin)


def test_change_stamp_is_withheld_while_a_write_is_too_recent_to_tell(disk_opener: Opener) -> None:
    store = disk_opener()
    store.create_session(make_record("s1"), [])
    assert store.change_stamp("s1") is None  # written just now: the mtime could hide a second write
    assert MemoryStore().change_stamp("s1") is None
