"""Where a named realm is found: the explicit root, else wherever it exists, else the surface default.

The CLI keeps new realms in the project (``<project>/.rkat/realms``), the servers
in the user data directory. A realm named on any surface is looked for in both,
so ``rkat -r team`` reaches the realm ``rkat-rest --realm team`` made.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx2
import pytest

from meerkat.errors import InvalidParams
from meerkat.realm import open_realm

from cli_process import RKAT, cli_env
from meerkat.realm import resolve_state_root
from test_rest_server import RestServer


@pytest.fixture
def user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private user data directory (``$XDG_DATA_HOME``); its realms live in ``meerkat/realms``."""
    monkeypatch.delenv("RKAT_STATE_ROOT", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data" / "meerkat" / "realms"


def make_realm(root: Path, realm_id: str) -> None:
    open_realm(realm_id, state_root=root, backend="sqlite")


def test_an_explicit_root_wins(tmp_path, user_data):
    make_realm(user_data, "team")
    assert resolve_state_root("team", str(tmp_path / "x"), context_root=tmp_path, project_default=True) \
        == tmp_path / "x"


def test_a_realm_is_found_where_it_exists(tmp_path, user_data):
    project = tmp_path / "project"
    project.mkdir()
    make_realm(user_data, "made-by-server")
    make_realm(project / ".rkat" / "realms", "made-by-cli")
    assert resolve_state_root("made-by-server", None, context_root=project, project_default=True) == user_data
    assert resolve_state_root("made-by-cli", None, context_root=project, project_default=False) \
        == project / ".rkat" / "realms"
    # Not found anywhere: the CLI creates it in the project, a server in the user data directory.
    assert resolve_state_root("new", None, context_root=project, project_default=True) \
        == project / ".rkat" / "realms"
    assert resolve_state_root("new", None, context_root=project, project_default=False) is None
    # A server without --context-root never looks in a project.
    assert resolve_state_root("made-by-cli", None, context_root=None, project_default=False) is None


def test_a_realm_in_both_places_is_refused(tmp_path, user_data):
    project = tmp_path / "project"
    make_realm(user_data, "twice")
    make_realm(project / ".rkat" / "realms", "twice")
    with pytest.raises(InvalidParams, match="exists under both"):
        resolve_state_root("twice", None, context_root=project, project_default=True)


def test_the_cli_reaches_the_realm_a_server_made_without_any_root_flag(tmp_path, user_data):
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    with RestServer("--realm", "team", env=env) as server:
        created = httpx2.post(f"{server.url}/sessions", json={"prompt": "from the daemon"}, timeout=30)
        assert created.status_code == 200, created.text
        session_id = created.json()["session_id"]
    project = tmp_path / "elsewhere"
    project.mkdir()
    # No --state-root: the CLI finds "team" in the user data directory, where the daemon made it.
    proc = subprocess.run([RKAT, "session", "list", "-r", "team", "--format", "json"], cwd=project,
                          env=cli_env(**env), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert session_id in proc.stdout
    assert not (project / ".rkat").exists()  # nothing was forked into the project
