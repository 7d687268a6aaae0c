"""`rkat session list|show|delete|interrupt` (and `rkat sessions`) and the realm options, through the installed CLI."""

from __future__ import annotations

import pytest

from cli_process import Cli


@pytest.fixture
def rkat(tmp_path) -> Cli:
    return Cli(tmp_path / "state", tmp_path)


def test_list_show_interrupt_delete(rkat):
    older = rkat("run", "--json", "--label", "team=alpha", "First question").json()["session_id"]
    newer = rkat("run", "--json", "Second question").json()["session_id"]

    table = rkat("session", "list").out.splitlines()
    assert table[0].split() == ["~N", "ID", "TITLE", "MODEL", "STATUS", "MESSAGES", "TOKENS", "CREATED", "(UTC)",
                                "UPDATED", "(UTC)", "LABELS"]
    assert table[1].split()[:7] == ["~1", newer, "Second", "question", "mock", "idle", "2"]
    assert table[2].split()[:7] == ["~2", older, "First", "question", "mock", "idle", "2"]
    assert table[2].endswith("team=alpha")

    page = rkat("sessions", "list", "--format", "json", "--limit", "1", "--offset", "1").json()
    assert [s["session_id"] for s in page["sessions"]] == [older]
    assert page["sessions"][0]["labels"] == {"team": "alpha"} and page["sessions"][0]["message_count"] == 2
    labelled = rkat("session", "list", "--label", "team=alpha", "--format", "json").json()
    assert [s["session_id"] for s in labelled["sessions"]] == [older]

    shown = rkat("session", "show", older).out
    assert shown.startswith(f"Session: {older}\nSession Ref: ")
    assert "[0] USER:\n  First question" in shown and "[1] ASSISTANT:\n  Mock reply to: First question" in shown
    as_json = rkat("sessions", "show", older[-8:], "--format", "json").json()
    assert as_json["session"]["session_id"] == older and as_json["session"]["labels"] == {"team": "alpha"}
    assert [m["role"] for m in as_json["messages"]] == ["user", "block_assistant"]

    idle = rkat("session", "interrupt", newer)
    assert idle.out == f"Session {newer}: no turn running; nothing to interrupt.\n"

    assert "still read it" in rkat("session", "delete", "--help").out  # the help says what archiving keeps
    deleted = rkat("session", "delete", older)
    assert deleted.out.startswith(f"Deleted session: {older}\nSession Ref: ws-")
    archived = rkat("session", "show", older)  # an archived session's transcript stays readable
    assert archived.out.startswith(f"Session: {older} (archived)\nMessages: 2\n")
    assert "[0] USER:\n  First question" in archived.out
    assert rkat("run", "--resume", older, "Still there?", expect=10).err == f"Error: Session not found: {older}\n"
    assert [s["session_id"] for s in rkat("session", "list", "--format", "json").json()["sessions"]] == [newer]
    assert rkat("session", "delete", "not-a-session", expect=10).err == "Error: No session matching 'not-a-session'\n"


def test_realm_options(rkat, tmp_path):
    rkat("--realm", "team-alpha", "run", "In the team realm")
    # Realm options may follow the command too; a new realm starts empty.
    assert rkat("session", "list", "-r", "other-team").out == "No sessions found.\n"
    listed = rkat("session", "list", "--realm", "team-alpha", "--format", "json").json()["sessions"]
    assert len(listed) == 1 and listed[0]["session_ref"].startswith("team-alpha:")
    assert (rkat.state_root / "team-alpha" / "realm_manifest.json").is_file()
    # The default realm is the workspace realm of the working directory, which has nothing yet.
    assert rkat("session", "list").out == "No sessions found.\n"
    assert rkat("--isolated", "session", "list").out == "No sessions found.\n"
    assert rkat("--isolated", "run", "--resume", "last", "x", expect=10).err == \
        "Error: No sessions found in this realm\n"

    mismatch = rkat("--realm", "team-alpha", "--realm-backend", "jsonl", "session", "list", expect=None)
    assert mismatch.code != 0 and mismatch.err.startswith("Error: ") and "backend" in mismatch.err
    bad = rkat("--realm", "../x", "session", "list", expect=2)
    assert bad.err.startswith("Error: invalid explicit realm id: '../x'")
    both = rkat("--realm", "a", "--isolated", "session", "list", expect=2)
    assert both.err == "Error: --realm and --isolated cannot be used together\n"
    ref = rkat("--realm", "other-team", "run", "--resume", f"team-alpha:{listed[0]['session_id']}", "x", expect=2)
    assert "Session belongs to realm 'team-alpha', but the active realm is 'other-team'" in ref.err


def test_json_output_has_the_rpc_wire_shapes(rkat):
    """`session list/show --format json` carry what rkat-rpc's session/list, session/read and session/history say."""
    from rpc_process import RpcProcess, child_env

    created = rkat("--realm", "shared", "run", "--json", "--label", "team=alpha", "First question").json()
    rkat("--realm", "shared", "c", "Second question")
    session_id = created["session_id"]
    listed = rkat("session", "list", "-r", "shared", "--format", "json").json()
    shown = rkat("session", "show", session_id[-8:], "-r", "shared", "--format", "json").json()

    server = RpcProcess("--realm", "shared", state_root=rkat.state_root, env=child_env(rkat.state_root))
    try:
        assert listed == server.result("session/list", {})
        assert shown["session"] == server.result("session/read", {"session_id": session_id})
        history = server.result("session/history", {"session_id": session_id})
        assert shown["messages"] == history["messages"] and len(history["messages"]) == 4
    finally:
        server.stop()
    assert set(listed["sessions"][0]) >= {"session_id", "session_ref", "created_at", "updated_at",
                                          "message_count", "total_tokens", "is_active", "labels"}


def test_new_user_mistakes_get_clear_messages(rkat, tmp_path):
    """Typos, unquoted prompts, a shell-expanded ~ and an offset past the end each say what went wrong."""
    typo = rkat("sesion", "list", expect=2)
    assert typo.err.endswith("Error: No such command 'sesion'. Did you mean 'session'?\n")
    unquoted = rkat("run", "tell", "me", "a", "story", expect=2)
    assert unquoted.err.endswith('Error: Got unexpected extra arguments (me a story). '
                                 'A prompt of several words needs quotes: rkat run "Tell me a story"\n')
    assert "A prompt of several words needs quotes" in rkat("resume", "last", "keep", "going", expect=2).err

    home = tmp_path / "home"
    home.mkdir()
    rkat.env["HOME"] = str(home)
    rkat("run", "A first session")
    # `rkat run --resume ~ "x"` unquoted: the shell hands over the home directory.
    expanded = rkat("run", "--resume", str(home), "Keep going", expect=10)
    assert expanded.err == (f"Error: No session matching '{home}' (the shell turned an unquoted ~ into your "
                            "home directory: write `last`, or quote it: '~')\n")
    assert rkat("session", "list", "--offset", "5").out == \
        "No sessions found at offset 5 (the list ends before it; try a smaller --offset).\n"
