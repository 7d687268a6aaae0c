"""`rkat session events|stop-run|inject` through the installed CLI, across processes on one realm."""

from __future__ import annotations

import json
import subprocess

import pytest

from cli_process import Cli


@pytest.fixture
def rkat(tmp_path) -> Cli:
    return Cli(tmp_path / "state", tmp_path)


def test_events_from_the_log_in_text_and_json(rkat):
    sid = rkat("run", "--json", "one two three").json()["session_id"]
    lines = [json.loads(line) for line in rkat("session", "events", sid, "--format", "json").out.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert lines[0]["payload"]["type"] == "run_started" and lines[-1]["payload"]["type"] == "run_completed"
    deltas = "".join(e["payload"]["delta"] for e in lines if e["payload"]["type"] == "text_delta")
    assert deltas == "Mock reply to: one two three"
    after = [json.loads(x) for x in rkat("session", "events", "last", "--after", "3", "-o", "json").out.splitlines()]
    assert [e["event_id"] for e in after] == [e["event_id"] for e in lines[3:]]
    text = rkat("session", "events", sid).out.splitlines()
    assert text[0].split()[:2] == ["1", "run_started"] and text[-1].split()[1] == "run_completed"
    assert any('"Mock' in line for line in text)
    rkat("session", "delete", sid)
    assert rkat("session", "events", sid, "-o", "json").out.count("\n") == len(lines)  # archived: still readable
    missing = rkat("session", "events", "01936f8a-7b2c-7000-8000-000000000099", expect=10)
    assert "Session not found" in missing.err


def test_inject_reaches_the_next_turn_and_is_idempotent(rkat):
    sid = rkat("run", "--json", "hello").json()["session_id"]
    first = rkat("session", "inject", sid, "The password is SWORDFISH.", "--idempotency-key", "k1", "-o", "json")
    assert first.json()["status"] == "applied"
    again = rkat("session", "inject", sid, "The password is SWORDFISH.", "--idempotency-key", "k1")
    assert again.out.startswith("Already injected with this key")
    answer = rkat("run", "--json", "--resume", sid, "mock:system").json()
    assert "SWORDFISH" in answer["text"]
    piped = rkat("session", "inject", sid, "-", "--source", "notes", stdin="From stdin.\n")
    assert piped.out.startswith(f"Injected into session {sid}")
    shown = rkat("session", "show", sid).out
    assert "SYSTEM:\n  The password is SWORDFISH." in shown and "From stdin." in shown


def test_stop_run_only_stops_the_current_run_of_another_process(rkat):
    sid = rkat("run", "--json", "warm up").json()["session_id"]
    stale = rkat("session", "stop-run", sid, "01936f8a-7b2c-7000-8000-0000000000aa")
    assert "is not the current run" in stale.out and "no run is running" in stale.out
    # A long turn in another process; follow the session's events (from the last logged one) to learn its run id.
    last = json.loads(rkat("session", "events", sid, "-o", "json").out.splitlines()[-1])["seq"]
    turn = subprocess.Popen(rkat.argv("run", "--json", "--resume", sid, "--param", "reply_words=2000",
                                      "--param", "token_delay_ms=10", "long"),
                            cwd=rkat.cwd, env=rkat.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    follower = subprocess.Popen(rkat.argv("session", "events", sid, "--follow", "--after", str(last), "-o", "json"),
                                cwd=rkat.cwd, env=rkat.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        run_id = None
        for line in follower.stdout:
            event = json.loads(line)
            if event["payload"]["type"] == "run_started":
                run_id = event["payload"]["identity"]["run_id"]
            if run_id and event["payload"]["type"] == "text_delta":
                break
        stopped = rkat("session", "stop-run", sid, run_id, "--reason", "test", "-o", "json").json()
        assert stopped["receipt"]["outcome"] == "stopped"
        out, err = turn.communicate(timeout=30)
        assert turn.returncode == 14, (out, err)
    finally:
        follower.kill()
        follower.communicate()
        if turn.poll() is None:
            turn.kill()
            turn.communicate()
