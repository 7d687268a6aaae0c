"""Realm state is private to its owner: directories 0700, files 0600, whatever the umask.

Every kind of write is made by the real processes a user runs (the CLI's turns and
config writes on sqlite and jsonl realms, a REST daemon following a session, which
publishes its live-link token in ``live/``), with a permissive umask, and then
every path under the state root is checked.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import trio

from cli_process import RKAT, cli_env
from test_rest_server import RestServer


def _open_umask() -> None:
    os.umask(0)


def rkat(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([RKAT, "--state-root", str(root), *args], capture_output=True, text=True, timeout=60,
                          env=cli_env(), preexec_fn=_open_umask, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done


def modes(root: Path) -> dict[str, int]:
    found = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(root: Path) -> dict[str, int]:
    found = modes(root)
    wrong = {path: oct(mode) for path, mode in found.items()
             if mode != (0o700 if (root / path).is_dir() else 0o600)}
    assert not wrong, wrong
    return found


@pytest.mark.parametrize("backend", ["sqlite", "jsonl"])
def test_cli_writes_are_private_under_an_open_umask(tmp_path, backend):
    root = tmp_path / "state"
    rkat(root, "run", "-r", "team", "--realm-backend", backend, "--model", "mock", "hello")
    rkat(root, "run", "-r", "team", "--resume", "last", "--model", "mock", "again")
    rkat(root, "config", "patch", "-r", "team", "--json", json.dumps({"agent": {"max_tokens_per_turn": 1000}}))
    found = assert_private(root)
    names = " ".join(found)
    assert "realm_manifest.json" in names and "config" in names
    assert ("sessions.sqlite3" in names) if backend == "sqlite" else (".jsonl" in names)


def test_existing_world_readable_realm_is_tightened_when_opened(tmp_path):
    root = tmp_path / "state"
    rkat(root, "run", "-r", "old", "--model", "mock", "hello")
    for path in [root, *root.rglob("*")]:  # as an older version left it
        path.chmod(0o755 if path.is_dir() else 0o644)
    rkat(root, "session", "list", "-r", "old")
    realm = next(p for p in root.iterdir() if p.is_dir())
    assert stat.S_IMODE(realm.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in realm.glob("sessions.sqlite3*"))


async def test_live_link_file_of_a_following_daemon_is_private(tmp_path):
    root = tmp_path / "state"
    rkat(root, "run", "-r", "watched", "--model", "mock", "hello")
    with RestServer("--realm", "watched", "--state-root", str(root), preexec_fn=_open_umask) as server:
        async with server.client() as http:
            session_id = (await http.get("/sessions")).json()["sessions"][0]["session_id"]
            async with http.stream("GET", f"/sessions/{session_id}/events") as events:
                assert events.status_code == 200
                with trio.fail_after(20):
                    while not list(root.glob("*/live/*.json")):
                        await trio.sleep(0.05)
                rkat(root, "run", "-r", "watched", "--resume", session_id, "--model", "mock", "pushed")
                assert_private(root)
                tokens = list(root.glob("*/live/*.json"))
                assert tokens and "token" in json.loads(tokens[0].read_text())
