"""The postgres store's own promises, on a real server: hosts sharing one database, races, lost connections.

The behaviour every backend shares is tested by the shared suite
(``test_store_suite.py`` and the suites importing its fixtures), where
``postgres`` is one of the backends.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Callable

import psycopg
import pytest

from meerkat.errors import ErrorCode, InvalidParams, SessionBusy, StoreError
from meerkat.events import TextDelta, make_envelope
from meerkat.store import RunCommit, open_store
from meerkat.store.eventlog import InputRecord
from meerkat.store.postgres import PostgresStore
from meerkat.store.postgres_schema import SCHEMA_VERSION
from meerkat.testing.postgres import PostgresServer

from test_store_suite import leased_run, make_commit, make_record, make_run, run_rows, system_row


@pytest.fixture
def hosts(postgres_url: str) -> Any:
    """Opens stores on the test database, each with a pool of its own (a host); closes them after."""
    opened: list[PostgresStore] = []

    def open_host(realm_id: str = "realm", **kw: Any) -> PostgresStore:
        store = PostgresStore(postgres_url, realm_id=realm_id, **kw)
        opened.append(store)
        return store

    yield open_host
    for store in opened:
        store.close()


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; each one's result or exception, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a store call hung"
    return results


def test_hosts_starting_at_once_on_a_fresh_database_migrate_it_once(postgres_url: str) -> None:
    stores = at_once(*[lambda i=i: PostgresStore(postgres_url, realm_id=f"r{i}") for i in range(6)])
    try:
        assert all(isinstance(s, PostgresStore) for s in stores), stores
        with psycopg.connect(postgres_url) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM rkat.schema_migrations ORDER BY 1")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        stores[0].create_session(make_record("s1"), [])
        assert stores[0].get_session("s1") is not None
    finally:
        for s in stores:
            if isinstance(s, PostgresStore):
                s.close()


def test_a_database_migrated_by_a_newer_build_is_refused(hosts: Any, postgres_url: str) -> None:
    hosts()
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO rkat.schema_migrations (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        hosts()


def test_realms_share_one_database_and_see_only_their_own_rows(hosts: Any) -> None:
    a, b = hosts("alpha"), hosts("beta")
    a.create_session(make_record("s1", model="model-a", labels={"k": "v"}), [system_row("a")])
    b.create_session(make_record("s1", model="model-b", labels={"k": "v"}), [system_row("b")])
    assert a.get_session("s1").model == "model-a" and b.get_session("s1").model == "model-b"
    a.begin_run(make_run("r1", "s1"))
    b.begin_run(make_run("r1", "s1"))  # same ids, other realm: not busy
    commit = make_commit("r1", "s1", run_rows("r1", "from a"))
    commit.events = [make_envelope("s1", 1, TextDelta(delta="a"))]
    a.commit_run(commit)
    assert b.read_messages("s1") == [system_row("b")]
    assert a.read_messages("s1") == [system_row("a"), *run_rows("r1", "from a")]
    assert b.get_session("s1").active_run_id == "r1" and a.get_session("s1").active_run_id is None
    assert [r.run_id for r in b.open_runs()] == ["r1"] and a.open_runs() == []
    assert b.read_events("s1", after_seq=0, limit=10).events == []
    assert len(a.read_events("s1", after_seq=0, limit=10).events) == 1
    a.archive_session("s1")
    assert [r.session_id for r in b.list_sessions(limit=10, offset=0, labels={"k": "v"})] == ["s1"]
    assert a.list_sessions(limit=10, offset=0) == []


def test_two_hosts_racing_to_begin_runs_never_both_win(hosts: Any) -> None:
    first, second = hosts(), hosts()
    sessions = [f"s{i}" for i in range(40)]
    for sid in sessions:
        first.create_session(make_record(sid), [])

    def contend(store: PostgresStore, tag: str) -> list[str]:
        won = []
        for sid in sessions:
            try:
                store.begin_run(make_run(f"{tag}-{sid}", sid))
                won.append(sid)
            except SessionBusy:
                pass
        return won

    won_a, won_b = at_once(lambda: contend(first, "a"), lambda: contend(second, "b"))
    assert sorted(won_a + won_b) == sorted(sessions)  # each session exactly once
    open_runs = first.open_runs()
    assert sorted(r.session_id for r in open_runs) == sorted(sessions)
    for run in open_runs:
        assert second.get_session(run.session_id).active_run_id == run.run_id


def test_two_hosts_closing_one_stale_run_close_it_once(hosts: Any) -> None:
    first, second = hosts(), hosts()
    first.create_session(make_record("s1"), [system_row()])
    first.begin_run(leased_run("r1", "s1", expires=10_000))
    outcomes = at_once(*[lambda s=s: s.close_stale_run("s1", "r1", now_ms=20_000, owner_dead=False, reason="lease")
                         for s in (first, second, first, second)])
    assert sorted(outcomes) == [False, False, False, True]
    assert first.get_session("s1").message_count == 3  # the system row + one interrupted pair, not two
    assert second.get_run("r1").status == "interrupted"


def _backends(postgres_url: str) -> list[int]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND application_name = 'rkat'")]


def _terminate(postgres_url: str, pids: list[int]) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_connections_the_server_dropped_are_replaced(hosts: Any, postgres_url: str) -> None:
    store = hosts(pool_size=3)
    store.create_session(make_record("s1"), [system_row()])
    at_once(*[lambda: store.read_messages("s1")] * 3)  # warm several pooled connections
    pids = _backends(postgres_url)
    assert pids
    _terminate(postgres_url, pids)
    started = time.monotonic()
    for _ in range(5):
        try:
            assert store.read_messages("s1") == [system_row()]
        except StoreError as exc:  # allowed, never a hang or a wrong answer
            assert "127.0.0.1" in exc.message
    assert time.monotonic() - started < 30
    store.begin_run(make_run("r1", "s1"))
    store.commit_run(make_commit("r1", "s1", run_rows("r1", "after the reconnect")))
    assert store.get_session("s1").message_count == 3
    assert set(_backends(postgres_url)).isdisjoint(pids)


def test_a_commit_cut_by_a_lost_connection_writes_nothing_and_can_be_retried(hosts: Any,
                                                                              postgres_url: str) -> None:
    store = hosts()
    store.create_session(make_record("s1"), [system_row()])
    queued = InputRecord(input_id="in1", session_id="s1", kind="external_event", state="queued",
                         created_at_ms=1, updated_at_ms=1, text="ping")
    assert store.admit_input(queued, None, inbox_capacity=8) is None
    store.begin_run(make_run("r1", "s1"))
    commit = make_commit("r1", "s1", run_rows("r1", "answer"), seq=2)
    commit.events = [make_envelope("s1", i, TextDelta(delta=str(i))) for i in (1, 2)]
    consumed = InputRecord(**{**{f: getattr(queued, f) for f in queued.__struct_fields__},
                              "state": "consumed", "run_id": "r1"})
    commit.inputs = [consumed]
    # Another transaction holds the input's row: the commit stops there, after writing its rows and events.
    blocker = psycopg.connect(postgres_url)
    blocker.execute("SELECT 1 FROM rkat.inputs WHERE input_id = 'in1' FOR UPDATE")
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(_outcome(lambda: store.commit_run(commit))))
    worker.start()
    try:
        deadline = time.monotonic() + 20
        waiting: list[int] = []
        while not waiting and time.monotonic() < deadline:
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                waiting = [r[0] for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND application_name = 'rkat'")]
            time.sleep(0.02)
        assert waiting, "the commit never reached the locked row"
        _terminate(postgres_url, waiting)
        worker.join(timeout=20)
        assert not worker.is_alive(), "commit_run hung on a lost connection"
    finally:
        blocker.rollback()
        blocker.close()
    assert isinstance(outcome[0], StoreError), outcome
    assert "commit_run" in outcome[0].message and "127.0.0.1" in outcome[0].message
    # Nothing of the commit is there: no rows, no events, the input still queued, the run still running.
    record = store.get_session("s1")
    assert record.message_count == 1 and record.active_run_id == "r1" and record.last_seq == 0
    assert store.read_messages("s1") == [system_row()]
    assert store.read_events("s1", after_seq=0, limit=10).events == []
    assert store.get_input("s1", input_id="in1").state == "queued"
    assert store.get_run("r1").status == "running"
    # The host reconnects; the same commit then lands once.
    store.commit_run(commit)
    assert store.read_messages("s1") == [system_row(), *run_rows("r1", "answer")]
    assert [e.seq for e in store.read_events("s1", after_seq=0, limit=10).events] == [1, 2]
    assert store.queued_inputs("s1") == []


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_errors_name_the_database_but_never_the_password(postgres_server: PostgresServer) -> None:
    port = _free_port()  # nothing listens there
    with pytest.raises(StoreError) as refused:
        PostgresStore(f"postgresql://rkat:s3cret-Pass@127.0.0.1:{port}/realms", realm_id="r")
    assert f"rkat@127.0.0.1:{port}/realms" in refused.value.message
    assert "s3cret-Pass" not in str(refused.value) and refused.value.code == ErrorCode.STORE_ERROR
    wrong = postgres_server.url("postgres", with_password=False).replace("rkat@", "rkat:Wrong-Secret-9@")
    with pytest.raises(StoreError, match="password authentication failed") as denied:
        open_store("postgres", database_url=wrong, realm_id="r")
    assert "Wrong-Secret-9" not in str(denied.value)
    with pytest.raises(StoreError, match="notaport") as garbled:
        PostgresStore("postgresql://rkat:Hidden-7@127.0.0.1:notaport/x", realm_id="r")
    assert "Hidden-7" not in str(garbled.value)
    with pytest.raises(InvalidParams, match="needs a database URL"):
        open_store("postgres", realm_id="r")


def test_the_pool_stays_within_its_size_and_a_closed_store_refuses_calls(hosts: Any, postgres_url: str) -> None:
    store = hosts(pool_size=2)
    for i in range(6):
        store.create_session(make_record(f"s{i}"), [])

    def turns(sid: str) -> None:
        for n in range(5):
            store.begin_run(make_run(f"{sid}-r{n}", sid))
            store.commit_run(make_commit(f"{sid}-r{n}", sid, run_rows(f"{sid}-r{n}", "x")))

    assert at_once(*[lambda i=i: turns(f"s{i}") for i in range(6)]) == [None] * 6
    assert len(_backends(postgres_url)) <= 2
    assert all(store.get_session(f"s{i}").message_count == 10 for i in range(6))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_session("s0")


def test_commits_write_the_event_log_in_one_transaction_with_the_rows(hosts: Any) -> None:
    """What a second host reads while a run commits: all of the run (rows and events) or none of it."""
    writer, reader = hosts(), hosts()
    writer.create_session(make_record("s1"), [])
    stop = threading.Event()
    torn: list[str] = []

    def read() -> None:
        while not stop.is_set():
            page = reader.read_events("s1", after_seq=0, limit=10_000)
            record = reader.get_session("s1")
            assert page is not None
            # Events are logged with their commit: a run's 3 events and its 2 rows appear together.
            if len(page.events) % 3:
                torn.append(f"{len(page.events)} events")
            if record.message_count % 2:
                torn.append(f"{record.message_count} rows")

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(30):
            writer.begin_run(make_run(f"r{n}", "s1"))
            commit: RunCommit = make_commit(f"r{n}", "s1", run_rows(f"r{n}", "x"), seq=3 * n + 3)
            commit.events = [make_envelope("s1", 3 * n + k, TextDelta(delta="d"))
                             for k in (1, 2, 3)]
            writer.commit_run(commit)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert torn == []
    assert reader.read_events("s1", after_seq=0, limit=1000).latest == 90


def test_a_row_held_by_a_hung_host_fails_the_call_instead_of_hanging(hosts: Any, postgres_url: str) -> None:
    from meerkat.store.postgres_db import PostgresDatabase

    store = hosts()
    store.create_session(make_record("s1"), [])
    impatient = hosts(database=PostgresDatabase(postgres_url, lock_timeout=0.5))
    hung = psycopg.connect(postgres_url)  # a host that took the session's row and stopped talking
    try:
        hung.execute("SELECT 1 FROM rkat.sessions WHERE session_id = 's1' FOR UPDATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match="lock timeout"):
            impatient.begin_run(make_run("r1", "s1"))
        assert time.monotonic() - started < 10
    finally:
        hung.rollback()
        hung.close()
    impatient.begin_run(make_run("r1", "s1"))
    assert store.get_session("s1").active_run_id == "r1"
    impatient.database.close()


def test_a_role_that_may_not_create_schemas_serves_a_migrated_database(hosts: Any, postgres_url: str,
                                                                       postgres_server: PostgresServer) -> None:
    hosts()  # the schema's owner migrates it
    role = f"app_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'app-Secret-1'")
        admin.execute(f"GRANT USAGE ON SCHEMA rkat TO {role}")
        admin.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rkat TO {role}")
    url = postgres_url.replace(f"{postgres_server.user}:", f"{role}:").replace(
        postgres_server.password, "app-Secret-1")
    try:
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE SCHEMA IF NOT EXISTS rkat")  # what a migration would need
        app = PostgresStore(url, realm_id="realm")
        try:
            app.create_session(make_record("s1"), [system_row()])
            app.begin_run(make_run("r1", "s1"))
            app.commit_run(make_commit("r1", "s1", run_rows("r1", "as the app role")))
            assert app.get_session("s1").message_count == 3
        finally:
            app.close()
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
