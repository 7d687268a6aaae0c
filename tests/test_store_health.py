"""A damaged store does not pass for healthy: ``GET /health`` checks it (503 naming the file)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from actors.store_health import _sqlite_quick_check

from test_rest_server import RestServer


def realm_dir(root: Path) -> Path:
    return next(p for p in root.iterdir() if p.is_dir() and (p / "realm_manifest.json").exists())


def delete_manifest(realm: Path) -> None:
    (realm / "realm_manifest.json").unlink()


def edit_manifest(realm: Path) -> None:
    manifest = json.loads((realm / "realm_manifest.json").read_text())
    (realm / "realm_manifest.json").write_text(json.dumps({**manifest, "realm_id": "someone-else"}))


def delete_database(realm: Path) -> None:
    (realm / "sessions.sqlite3").unlink()


def empty_database(realm: Path) -> None:
    (realm / "sessions.sqlite3").write_bytes(b"")


@pytest.mark.parametrize("damage, named", [
    (delete_manifest, "realm_manifest.json"), (edit_manifest, "realm_manifest.json"),
    (delete_database, "sessions.sqlite3"), (empty_database, "sessions.sqlite3"),
])
async def test_health_reports_a_damaged_store(tmp_path, damage, named):
    with RestServer("--realm", "probe", "--state-root", str(tmp_path)) as server:
        async with server.client() as http:
            assert (await http.post("/sessions", json={"prompt": "hi", "model": "mock"})).status_code == 200
            healthy = await http.get("/health")
            assert healthy.status_code == 200 and healthy.text == "ok"
            as_json = await http.get("/health", headers={"Accept": "application/json"})
            assert as_json.status_code == 200 and as_json.json() == {"status": "ok", "problems": []}
            damage(realm_dir(tmp_path) if damage is not delete_manifest else realm_dir(tmp_path))
            sick = await http.get("/health")
            assert sick.status_code == 503, sick.text
            body = sick.json()
            assert body["status"] == "unhealthy" and any(named in problem for problem in body["problems"]), body
            # /health needs no token: it names files inside the realm, never where the realm lives.
            assert str(tmp_path) not in sick.text and "<realm>/" in sick.text, body


def test_deep_check_finds_a_corrupt_page(tmp_path):
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("row %d " % i * 20,) for i in range(2000)])
        conn.execute("CREATE INDEX tx ON t (x)")
    assert _sqlite_quick_check(str(path)) == []
    data = bytearray(path.read_bytes())
    data[4096 * 3: 4096 * 3 + 2000] = b"\xff" * 2000  # a page in the middle
    path.write_bytes(bytes(data))
    problems = _sqlite_quick_check(str(path))
    assert problems and all(str(path) in problem for problem in problems), problems



def test_a_checkpoint_never_writes_into_an_emptied_database(tmp_path):
    """The daemon checkpoints every 0.25 s. Into a database file emptied behind it, SQLite would
    copy the WAL's pages and make a partial database that /health then calls ok (seen as a
    flaky 200 in test_health_reports_a_damaged_store): the checkpoint refuses instead."""
    from meerkat.errors import StoreError
    from meerkat.store import SessionRecord
    from meerkat.store.sqlite import SqliteStore

    def record(n):
        return SessionRecord(session_id=f"01936f8a-0000-7000-8000-00000000000{n}", created_at_ms=1,
                             updated_at_ms=1, model="mock", provider="mock")

    database = tmp_path / "sessions.sqlite3"
    store = SqliteStore(database)
    try:
        store.create_session(record(1), [])
        store.checkpoint()  # the daemon's checkpoint connection is open from then on
        store.create_session(record(2), [])  # pages waiting in the WAL
        database.write_bytes(b"")
        with pytest.raises(StoreError, match="emptied"):
            store.checkpoint()
        assert database.stat().st_size == 0
    finally:
        store.close()
