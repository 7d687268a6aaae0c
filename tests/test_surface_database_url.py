"""``--database-url`` on every surface: a database that refuses, a missing URL and a malformed one are one
clear error line each, naming the database by its redacted URL and never its password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rpc_process import child_env

BIN = Path(sys.executable).parent
SURFACES = {
    "rkat": [str(BIN / "rkat"), "session", "list"],
    "rkat-rest": [str(BIN / "rkat-rest"), "--port", "0"],
    "rkat-rpc": [str(BIN / "rkat-rpc")],
    "rkat-mcp": [str(BIN / "rkat-mcp")],
}


def _run(surface: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    argv = [*SURFACES[surface], "--realm", "team", "--state-root", str(tmp_path), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env={**child_env(tmp_path), **(env or {})},
                          stdin=subprocess.DEVNULL, cwd=tmp_path)


@pytest.mark.parametrize("surface", SURFACES)
def test_a_wrong_password_is_one_error_without_the_password(surface, tmp_path, postgres_server):
    url = postgres_server.url("postgres").replace(postgres_server.password, "Wrong-Secret-42")
    done = _run(surface, tmp_path, "--realm-backend", "postgres", "--database-url", url)
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Wrong-Secret-42" not in done.stderr + done.stdout
    assert f"postgresql://{postgres_server.user}@127.0.0.1:{postgres_server.port}/postgres" in done.stderr
    assert "password authentication failed" in done.stderr


@pytest.mark.parametrize("surface", SURFACES)
def test_postgres_without_a_url_says_which_flag_or_variable_to_set(surface, tmp_path):
    done = _run(surface, tmp_path, "--realm-backend", "postgres")
    assert done.returncode != 0
    assert "--database-url" in done.stderr and "RKAT_DATABASE_URL" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("surface", SURFACES)
def test_a_malformed_url_from_the_environment_is_refused_without_its_password(surface, tmp_path):
    done = _run(surface, tmp_path, "--realm-backend", "postgres",
                env={"RKAT_DATABASE_URL": "postgresql://bob:Hidden-Pw-7@db:notaport/x"})
    assert done.returncode != 0
    assert "Hidden-Pw-7" not in done.stderr + done.stdout
    assert "postgresql://bob@db:notaport/x" in done.stderr, done.stderr


@pytest.mark.parametrize("surface", SURFACES)
def test_help_documents_the_flag(surface, tmp_path):
    argv = [SURFACES[surface][0], "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=child_env(tmp_path))
    assert "--database-url" in done.stdout and "RKAT_DATABASE_URL" in done.stdout
