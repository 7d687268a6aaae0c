"""The real PostgreSQL server the tests use (meerkat/testing/postgres.py): it starts, it is safe, it goes away."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from meerkat.testing.postgres import PostgresServer, find_bin_dir, running_postgres


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def test_a_fresh_database_answers_over_tcp_with_the_password(postgres_server: PostgresServer,
                                                              postgres_url: str) -> None:
    with psycopg.connect(postgres_url, connect_timeout=10) as conn:
        version, user, database = conn.execute(
            "SELECT current_setting('server_version_num')::int, current_user, current_database()").fetchone()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                              "('pg_catalog', 'information_schema')").fetchone()[0]
        backend_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        # Read while the connection is open: its backend process ends with it.
        backend_uid = _uid_of(backend_pid)
        fsync = conn.execute("SHOW fsync").fetchone()[0]
    assert version >= 130000
    assert user == postgres_server.user
    assert database.startswith("test_") and database != "postgres"
    assert tables == 0
    assert fsync == "off"  # test clusters only
    assert postgres_server.url(database) == postgres_url
    # PostgreSQL refuses root: when the tests run as root the server runs as an unprivileged user.
    assert backend_uid != 0


def test_tcp_needs_the_right_password(postgres_server: PostgresServer) -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(postgres_server.url(with_password=False), connect_timeout=10,
                        password="wrong").close()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres_server.url(with_password=False), connect_timeout=10,
                        passfile=os.devnull).close()
    with postgres_server.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_each_test_gets_its_own_database(postgres_server: PostgresServer, postgres_url: str) -> None:
    other = postgres_server.create_database()
    try:
        with psycopg.connect(postgres_url) as a, psycopg.connect(other) as b:
            a.execute("CREATE TABLE only_here (x int)")
            a.commit()
            assert b.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
    finally:
        postgres_server.drop_database(other.rsplit("/", 1)[1])


def _checkpointer_pid(server: PostgresServer) -> int:
    with server.connect() as conn:
        return int(conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").fetchone()[0])


def test_stopping_leaves_no_process_and_no_files() -> None:
    with running_postgres() as server:
        checkpointer = _checkpointer_pid(server)
        base = server.socket_dir.parent
        assert base.is_dir()
    assert not base.exists()
    assert not Path(f"/proc/{checkpointer}").exists()


WATCHED = """
import sys, time
from meerkat.testing.postgres import running_postgres
with running_postgres() as server:
    print(server.url(), server.socket_dir, flush=True)
    time.sleep(600)
"""


def test_a_killed_test_process_does_not_leave_its_server_running() -> None:
    proc = subprocess.Popen([sys.executable, "-c", WATCHED], stdout=subprocess.PIPE, text=True)
    try:
        url, socket_dir = proc.stdout.readline().split()
        with psycopg.connect(url, autocommit=True) as conn:
            checkpointer = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
                                        ).fetchone()[0]
    finally:
        proc.kill()  # SIGKILL: no finally block of the test process runs
        proc.wait()
        proc.stdout.close()
    deadline = time.monotonic() + 30
    while (Path(f"/proc/{checkpointer}").exists() or Path(socket_dir).exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{checkpointer}").exists(), "the server outlived the process that started it"
    assert not Path(socket_dir).parent.exists(), "its directory was left behind"


def test_the_binaries_are_found_and_named_on_the_command_line() -> None:
    found = find_bin_dir()
    assert found is not None and (found / "pg_ctl").exists()
    done = subprocess.run([sys.executable, "-m", "meerkat.testing.postgres", "--check"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == str(found)
    missing = subprocess.run([sys.executable, "-m", "meerkat.testing.postgres", "--check"], capture_output=True,
                             text=True, timeout=60, env={**os.environ, "RKAT_POSTGRES_BIN": "/nonexistent"})
    assert missing.returncode == 1 and "no PostgreSQL server binaries found" in missing.stderr


def test_spare_databases_are_fresh_and_dropped_after_use(postgres_server: PostgresServer) -> None:
    from meerkat.testing.postgres_spares import SpareDatabases

    with postgres_server.connect() as conn:
        conn.execute("CREATE DATABASE spare_template")
    with postgres_server.connect("spare_template") as conn:
        conn.execute("CREATE TABLE marker (x int)")
    spares = SpareDatabases(postgres_server, spares=1, prefix="spare_", template="spare_template")
    try:
        names = [spares.take() for _ in range(3)]
        assert len(set(names)) == 3
        for name in names:
            with postgres_server.connect(name) as conn:  # each a copy of the template, untouched
                assert conn.execute("SELECT count(*) FROM marker").fetchone() == (0,)
                conn.execute("INSERT INTO marker VALUES (1)")
        for name in names:
            spares.give_back(name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with postgres_server.connect() as conn:
                left = {r[0] for r in conn.execute("SELECT datname FROM pg_database")} & set(names)
            if not left:
                break
            time.sleep(0.05)
        assert not left, f"not dropped: {left}"
    finally:
        spares.close()
        postgres_server.drop_database("spare_template")


def _fake_install(root: Path) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("initdb", "pg_ctl", "postgres"):
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def test_where_the_binaries_are_looked_for_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.machinery

    import meerkat.testing.postgres as pg

    explicit, on_path, debian, wheel = (_fake_install(tmp_path / name) for name in ("explicit", "path", "debian",
                                                                                    "site/pgserver/pginstall"))
    links = tmp_path / "links"
    links.mkdir()
    (links / "pg_ctl").symlink_to(on_path / "pg_ctl")  # like /usr/local/bin/pg_ctl -> the real install
    spec = importlib.machinery.ModuleSpec("pgserver", None, origin=str(wheel.parent.parent / "__init__.py"))
    monkeypatch.setattr(pg.importlib.util, "find_spec", lambda name: spec if name == "pgserver" else None)
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [str(debian)])
    monkeypatch.setenv("PATH", str(links))
    monkeypatch.setenv(pg.BIN_DIR_ENV, str(explicit))
    assert pg.find_bin_dir() == explicit
    monkeypatch.delenv(pg.BIN_DIR_ENV)
    assert pg.find_bin_dir() == on_path  # the link's target directory, where share/ and lib/ are found
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert pg.find_bin_dir() == debian
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    assert pg.find_bin_dir() == wheel  # PyPI's pgserver, last
    monkeypatch.setattr(pg.importlib.util, "find_spec", lambda name: None)
    assert pg.find_bin_dir() is None


def test_an_install_nobody_can_reach_is_copied_with_its_libraries(tmp_path: Path) -> None:
    from meerkat.testing.postgres import _copy_install, _others_can_run

    site = tmp_path / "private" / "site-packages"
    bin_dir = _fake_install(site / "pgserver" / "pginstall")
    (site / "pgserver" / "pginstall" / "lib").mkdir()
    (site / "pgserver.libs").mkdir()
    (site / "pgserver.libs" / "libpq-abc.so.5").write_text("")  # found through $ORIGIN/../../../pgserver.libs
    (tmp_path / "private").chmod(0o700)
    assert not _others_can_run(bin_dir / "postgres")
    dest = tmp_path / "public"
    copied = _copy_install(bin_dir, dest)
    assert copied == dest / "pgserver" / "pginstall" / "bin"
    assert (copied / "postgres").exists() and (copied.parent / "lib").is_dir()
    assert (copied / "../../../pgserver.libs/libpq-abc.so.5").resolve().exists()
    # Every directory of the copy is open to others (the copy's parent is made for the server's user).
    assert all(p.stat().st_mode & 0o005 == 0o005 for p in [dest, *dest.rglob("*")] if p.is_dir())
