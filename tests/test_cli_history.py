"""`rkat session fork|revisions|restore|export|system-prompt` and `rkat run --fork SESSION@N`, through the installed CLI."""

from __future__ import annotations

import json

import pytest

from cli_process import Cli


@pytest.fixture
def rkat(tmp_path) -> Cli:
    return Cli(tmp_path / "state", tmp_path)


def rows(rkat: Cli, session: str) -> list[dict]:
    return rkat("session", "show", session, "--format", "json").json()["messages"]


def test_fork_and_run_fork(rkat):
    source = rkat("run", "--json", "--label", "team=a", "First question").json()["session_id"]
    rkat("run", "--resume", source, "Second question")
    original = rows(rkat, source)
    assert len(original) == 4

    forked = rkat("session", "fork", source, "--at", "2", "--format", "json")
    info = forked.json()
    assert info["source_session_id"] == source and info["message_count"] == 2
    assert f"from {source} at message 2" in forked.err
    assert rows(rkat, info["session_id"]) == original[:2]
    listed = {s["session_id"]: s for s in rkat("session", "list", "--format", "json").json()["sessions"]}
    assert listed[info["session_id"]]["labels"] == {"team": "a"}

    text = rkat("session", "fork", source, "--at", "2", "Ask it another way").out
    assert "Mock reply to: Ask it another way" in text

    result = rkat("run", "--fork", f"{source}@2", "--json", "A third way").json()
    child = result["session_id"]
    assert child not in (source, info["session_id"])
    child_rows = rows(rkat, child)
    assert child_rows[:2] == original[:2] and child_rows[2]["content"] == "A third way" and len(child_rows) == 4
    assert rows(rkat, source) == original  # the source never changes

    whole = rkat("run", "--fork", source, "--json", "Continue the copy").json()["session_id"]
    assert len(rows(rkat, whole)) == 6

    assert "--fork takes SESSION or SESSION@N" in rkat("run", "--fork", "@3", "x", expect=2).err
    assert "outside the transcript" in rkat("run", "--fork", f"{source}@9", "x", expect=2).err
    assert "cannot be combined" in rkat("run", "--fork", source, "--resume", source, "x", expect=2).err
    assert rkat("session", "fork", "nope", expect=10).err == "Error: No session matching 'nope'\n"


def test_system_prompt_revisions_restore_export(rkat):
    sid = rkat("run", "--json", "--system-prompt", "Be terse.", "mock:system").json()["session_id"]
    assert "No rewrites" in rkat("session", "revisions", sid).out
    changed = rkat("session", "system-prompt", sid, "Be a pirate.").out
    assert "version 1 (revision r1)" in changed
    assert "[0] SYSTEM (prompt main v1):\n  Be a pirate." in rkat("session", "show", sid).out
    answer = rkat("run", "--resume", sid, "mock:system").out
    assert "pirate" in answer and "terse" not in answer, answer
    table = rkat("session", "revisions", sid).out.splitlines()
    assert table[1] == "Head revision: r1" and table[2].split()[:2] == ["REVISION", "PARENT"]
    assert table[3].split()[:2] == ["r1", "r0"] and "system_prompt_update" in table[3]
    listing = rkat("session", "revisions", sid, "--format", "json").json()
    assert listing["head_revision"] == "r1" and listing["entries"][0]["reason"] == "system_prompt_update"

    restored = rkat("session", "restore", sid, "r0").out
    assert restored.startswith(f"Restored r0 of session {sid} as r2")
    assert "terse" in rkat("run", "--resume", sid, "mock:system").out
    assert "no transcript revision 'r9'" in rkat("session", "restore", sid, "r9", expect=2).err

    atif = json.loads(rkat("session", "export", sid).out)
    assert atif["schema_version"] == "ATIF-v1.4" and atif["session_id"] == sid
    assert atif["steps"][0]["source"] == "system" and atif["steps"][1]["source"] == "user"
    markdown = rkat("session", "export", sid, "--format", "markdown").out
    assert markdown.startswith(f"# Session {sid}") and "## 1. User" in markdown
    target = rkat.cwd / "out.json"
    rkat("session", "export", sid, "--format", "json", "--file", str(target))
    assert json.loads(target.read_text())["session_id"] == sid
    assert "'pdf' is not one of 'atif', 'json', 'markdown'" in rkat("session", "export", sid, "--format", "pdf", expect=2).err
