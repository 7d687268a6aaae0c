"""A postgres realm is pinned in its database (the truth) and cached in the state root, never with a password.

Against the real PostgreSQL server of the tests (tests/conftest.py).
"""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from meerkat.errors import InvalidParams, StoreError
from meerkat.realm import RealmPaths, open_realm
from meerkat.store.postgres_realms import find_realm, list_database_realms


def _password(server) -> list[str]:
    return [server.password, unquote(server.password)]


def _assert_no_password(text: str, server) -> None:
    for secret in _password(server):
        assert secret not in text


def test_a_postgres_realm_lives_in_the_database_and_its_manifest_holds_no_password(tmp_path, postgres_url,
                                                                                      postgres_server):
    realm = open_realm("team", state_root=tmp_path, backend="postgres", database_url=postgres_url)
    assert realm.backend == "postgres" and realm.database is not None
    assert (realm.database.host, realm.database.port, realm.database.user) == ("127.0.0.1", postgres_server.port,
                                                                                postgres_server.user)
    assert realm.database.dbname == postgres_url.rsplit("/", 1)[1]
    assert realm.database.database_id
    row, database_id = find_realm(postgres_url, "team")
    assert row is not None and row.origin == "explicit" and database_id == realm.database.database_id
    manifest = RealmPaths.for_realm(tmp_path, "team").manifest_path.read_text()
    assert '"backend": "postgres"' in manifest and realm.database.database_id in manifest
    _assert_no_password(manifest, postgres_server)
    _assert_no_password(repr(realm), postgres_server)


def test_reopening_needs_no_backend_and_takes_the_url_from_the_environment(tmp_path, postgres_url, monkeypatch):
    first = open_realm("team", state_root=tmp_path, backend="postgres", database_url=postgres_url)
    monkeypatch.setenv("RKAT_DATABASE_URL", postgres_url)
    again = open_realm("team", state_root=tmp_path)
    assert again.backend == "postgres" and again.database == first.database
    # Another host (its own, empty state root) finds the realm in the database instead of forking a file realm.
    other_host = open_realm("team", state_root=tmp_path / "host-b")
    assert other_host.backend == "postgres" and other_host.database == first.database
    # A realm the database does not hold is still a file realm by default.
    assert open_realm("local", state_root=tmp_path).backend == "sqlite"


def test_without_any_url_the_error_says_which_flag_or_variable_to_set(tmp_path, postgres_url, monkeypatch,
                                                                       postgres_server):
    open_realm("team", state_root=tmp_path, backend="postgres", database_url=postgres_url)
    monkeypatch.delenv("RKAT_DATABASE_URL", raising=False)
    for backend in (None, "postgres"):
        with pytest.raises(InvalidParams) as caught:
            open_realm("team", state_root=tmp_path, backend=backend)
        message = caught.value.message
        assert "--database-url" in message and "RKAT_DATABASE_URL" in message
        assert f"127.0.0.1:{postgres_server.port}" in message  # the cached identity says which database
        _assert_no_password(message, postgres_server)


def test_another_backend_or_another_database_is_refused(tmp_path, postgres_url, postgres_server):
    open_realm("team", state_root=tmp_path, backend="postgres", database_url=postgres_url)
    with pytest.raises(InvalidParams, match="backend mismatch for 'team': requested 'sqlite', existing 'postgres'"):
        open_realm("team", state_root=tmp_path, backend="sqlite")
    other_url = postgres_server.create_database()
    try:
        with pytest.raises(InvalidParams) as caught:
            open_realm("team", state_root=tmp_path, database_url=other_url)
        assert "reaches another database" in caught.value.message
        _assert_no_password(caught.value.message, postgres_server)
    finally:
        postgres_server.drop_database(other_url.rsplit("/", 1)[1])
    open_realm("files", state_root=tmp_path)
    with pytest.raises(InvalidParams, match="requested 'postgres', existing 'sqlite'"):
        open_realm("files", state_root=tmp_path, database_url=postgres_url)


def test_a_postgres_realm_must_be_named_and_the_url_must_be_for_postgres(tmp_path, postgres_url):
    with pytest.raises(InvalidParams, match="must be named"):
        open_realm(None, state_root=tmp_path, backend="postgres", database_url=postgres_url)
    with pytest.raises(InvalidParams, match="only for --realm-backend postgres"):
        open_realm("x", state_root=tmp_path, backend="jsonl", database_url=postgres_url)


def test_an_unreachable_database_is_a_store_error_without_the_password(tmp_path, postgres_server):
    url = postgres_server.url("postgres").replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(StoreError) as caught:
        open_realm("team", state_root=tmp_path, backend="postgres", database_url=url)
    assert "cannot connect" in caught.value.message and "127.0.0.1:1/postgres" in caught.value.message
    _assert_no_password(caught.value.message, postgres_server)


def test_wrong_password_error_names_no_password(tmp_path, postgres_server):
    url = postgres_server.url("postgres").replace(postgres_server.password, "wrong-secret-123")
    with pytest.raises(StoreError) as caught:
        open_realm("team", state_root=tmp_path, backend="postgres", database_url=url)
    assert "wrong-secret-123" not in caught.value.message
    assert "password authentication failed" in caught.value.message


def test_hosts_opening_one_new_realm_at_once_agree(tmp_path, postgres_url):
    import threading

    results, errors = [], []

    def open_one(index: int) -> None:
        try:
            results.append(open_realm("race", state_root=tmp_path / f"h{index}", backend="postgres",
                                      database_url=postgres_url))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({r.database for r in results}) == 1
    realms, _ = list_database_realms(postgres_url)
    assert [r.realm_id for r in realms] == ["race"]


def test_realm_list_shows_the_databases_realms_and_prune_leaves_them(tmp_path, postgres_url, postgres_server):
    from cli_process import Cli

    open_realm("team", state_root=tmp_path / "host-a", backend="postgres", database_url=postgres_url)
    open_realm("files", state_root=tmp_path / "host-b")
    rkat = Cli(tmp_path / "host-b", tmp_path)
    without = {r["realm_id"]: r for r in rkat("realm", "list", "--format", "json").json()}
    assert set(without) == {"files"}
    listed = rkat("realm", "list", "--format", "json", "--database-url", postgres_url)
    by_id = {r["realm_id"]: r for r in listed.json()}
    assert set(by_id) == {"files", "team"}
    team = by_id["team"]
    assert team["backend"] == "postgres" and team["origin"] == "explicit" and team["path"] is None
    assert team["in_use"] is None and team["size_bytes"] is None
    assert team["database"] == f"postgresql://{postgres_server.user}@127.0.0.1:{postgres_server.port}/" \
                               f"{postgres_url.rsplit('/', 1)[1]}"
    text = Cli(tmp_path / "host-a", tmp_path, env={"RKAT_DATABASE_URL": postgres_url})("realm", "list").out
    assert text.count("team") == 1 and "postgres" in text  # the cache and the database row are one realm
    for output in (listed.out, listed.err, text):
        _assert_no_password(output, postgres_server)
    pruned = Cli(tmp_path / "host-a", tmp_path)("realm", "prune", "--older-than", "0")
    assert pruned.err == "0 realm(s) removed.\n"
    assert RealmPaths.for_realm(tmp_path / "host-a", "team").manifest_path.exists()


def test_resolved_paths_of_a_postgres_realm_name_its_database_not_files(tmp_path, postgres_url, postgres_server):
    realm = open_realm("team", state_root=tmp_path, backend="postgres", database_url=postgres_url)
    paths = realm.resolved_paths()
    assert paths is not None and set(paths) == {"root", "manifest_path", "database"}
    assert paths["database"] == realm.database.display() and postgres_server.password not in str(paths)
    assert set(open_realm("files", state_root=tmp_path).resolved_paths() or {}) >= {"config_path",
                                                                                    "sessions_sqlite_path"}


def test_prune_never_removes_a_postgres_realm_even_one_marked_generated(tmp_path):
    import json

    from meerkat.realm_admin import prune_realms

    root = tmp_path / "realm-0190"
    root.mkdir()
    (root / "realm_manifest.json").write_text(json.dumps({
        "realm_id": "realm-0190", "backend": "postgres", "origin": "generated", "created_at": "1",
        "database": {"host": "db", "port": 5432, "dbname": "rkat", "user": "rkat", "database_id": "x"}}))
    assert prune_realms(tmp_path, older_than_s=0) == []
    assert root.exists()
