"""A realm whose store or manifest was damaged does not open silently empty: the CLI says so."""

from __future__ import annotations

import json

from cli_process import Cli


def realm(tmp_path, backend="sqlite"):
    rkat = Cli(tmp_path / "state", tmp_path)
    rkat("run", "-r", "kept", "--realm-backend", backend, "hello")
    return rkat, next((tmp_path / "state").iterdir())


def test_an_emptied_database_is_reported(tmp_path):
    rkat, directory = realm(tmp_path)
    (directory / "sessions.sqlite3").write_bytes(b"")
    for companion in directory.glob("sessions.sqlite3-*"):
        companion.unlink()
    listed = rkat("session", "list", "-r", "kept")
    assert "is empty (zero bytes)" in listed.err and "sessions.sqlite3" in listed.err, listed.err


def test_a_deleted_database_of_an_old_realm_is_reported(tmp_path):
    rkat, directory = realm(tmp_path)
    manifest = json.loads((directory / "realm_manifest.json").read_text())
    (directory / "realm_manifest.json").write_text(json.dumps({**manifest, "created_at": "1000"}))
    for path in directory.glob("sessions.sqlite3*"):
        path.unlink()
    listed = rkat("session", "list", "-r", "kept")
    assert "is missing although the realm exists" in listed.err, listed.err


def test_a_deleted_manifest_is_recreated_for_the_stored_backend_and_reported(tmp_path):
    rkat, directory = realm(tmp_path, backend="jsonl")
    (directory / "realm_manifest.json").unlink()
    listed = rkat("session", "list", "-r", "kept", "--format", "json").json()
    assert len(listed["sessions"]) == 1  # the jsonl sessions are still there, not a new empty sqlite store
    assert json.loads((directory / "realm_manifest.json").read_text())["backend"] == "jsonl"


def test_an_edited_manifest_is_reported(tmp_path):
    rkat, directory = realm(tmp_path)
    manifest = json.loads((directory / "realm_manifest.json").read_text())
    (directory / "realm_manifest.json").write_text(json.dumps({**manifest, "backend": "jsonl"}))
    listed = rkat("session", "list", "-r", "kept")
    assert "was edited?" in listed.err, listed.err


def test_a_database_still_being_created_by_another_process_is_not_reported(tmp_path, caplog):
    """Processes starting together on a new realm: the first has made the database file but
    not yet written its schema when the second opens the realm. That is no damage."""
    import sqlite3
    import threading
    import time

    from meerkat.realm import open_realm

    first = open_realm("fresh", state_root=tmp_path, backend="sqlite")
    database = first.paths.sessions_sqlite_path
    database.write_bytes(b"")

    def write_schema_a_moment_later():
        time.sleep(0.3)
        with sqlite3.connect(database) as connection:
            connection.execute("CREATE TABLE sessions (id TEXT)")

    writer = threading.Thread(target=write_schema_a_moment_later)
    writer.start()
    with caplog.at_level("ERROR", logger="rkat.realm"):
        open_realm("fresh", state_root=tmp_path, backend="sqlite")
    writer.join()
    assert "is empty" not in caplog.text, caplog.text
