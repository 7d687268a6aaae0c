"""CLI rough edges a new user hit, each through the installed ``rkat`` (a pseudo-terminal where it matters)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from cli_process import Cli, cli_env, run_in_terminal


@pytest.fixture
def rkat(tmp_path) -> Cli:
    return Cli(tmp_path / "state", tmp_path)


def test_models_is_a_table_with_a_key_column_and_json_on_request(tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path, env={"OPENAI_API_KEY": "sk-test-not-shown"})
    table = rkat("models").out.splitlines()
    assert table[0].split() == ["PROVIDER", "MODEL", "TIER", "CONTEXT", "KEY", "SET"]
    rows = {line.split()[1]: line for line in table[1:]}
    assert rows["claude-opus-4-6"].endswith("no (ANTHROPIC_API_KEY)")
    assert rows["gpt-5.5"].split()[2] == "*" and rows["gpt-5.5"].endswith("yes")
    assert rows["mock"].endswith("not needed") and "sk-test" not in "\n".join(table)
    assert len(table) < 60
    catalog = rkat("models", "--format", "json").json()
    assert {p["provider"] for p in catalog["providers"]} >= {"anthropic", "openai", "mock"}


def test_bare_rkat_without_a_terminal_prints_help_and_succeeds(rkat):
    bare = rkat()
    assert bare.out.startswith("Usage: rkat") and bare.code == 0
    helped = rkat("--help").out
    assert "14 turn interrupted from elsewhere" in " ".join(helped.split())
    assert "23 agent error" in " ".join(helped.split())


def test_config_get_key_set_key_value_and_stdin(rkat):
    assert rkat("config", "set", "agent.model", "claude-sonnet-4-6").out == "generation=1\n"
    assert rkat("config", "get", "agent.model").out == "claude-sonnet-4-6\n"
    assert rkat("config", "set", "retry.max_retries", "5").out == "generation=2\n"
    assert rkat("config", "get", "retry.max_retries").out == "5\n"
    assert rkat("config", "get", "retry", "--format", "json").json()["max_retries"] == 5
    typo = rkat("config", "get", "agent.modle", expect=2)
    assert "did you mean 'agent.model'" in typo.err
    assert "unknown key 'agent.modle'" in rkat("config", "set", "agent.modle", "x", expect=2).err
    # `-` reads the document from stdin: TOML for set, JSON for patch.
    edited = rkat("config", "get").out.replace("max_turns = 100", "max_turns = 7")
    assert rkat("config", "set", "-", stdin=edited).out == "generation=3\n"
    assert rkat("config", "get", "agent.max_turns").out == "7\n"
    assert rkat("config", "patch", "-", stdin='{"agent": {"max_turns": 9}}').out == "generation=4\n"
    assert rkat("config", "get", "agent").out.count("max_turns = 9") == 1


def test_a_reader_that_goes_away_is_not_an_error(rkat):
    rkat("run", "--param", "reply_words=20000", "Tell me everything")
    proc = subprocess.Popen(rkat.argv("session", "show", "last"), cwd=rkat.cwd, env=rkat.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()  # `| head -c 100`
    assert proc.wait(60) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_summary_is_the_same_for_new_and_resumed_and_flags_cut_off_answers(rkat):
    new = rkat("run", "Hello")
    resumed = rkat("run", "--resume", "Again")
    for result in (new, resumed):
        summary = result.err.strip()
        assert summary.startswith("[Session: ") and " | mock | 1 model call | Tokens: " in summary
        assert len(summary) < 80
    handle = new.err.split("[Session: ")[1].split(" ")[0]
    assert resumed.err.split("[Session: ")[1].split(" ")[0] == handle
    cut = rkat("run", "--max-tokens", "2", "--param", "reply_words=50", "Say a lot")
    assert "Warning: the answer was cut off at the token limit" in cut.err
    as_json = rkat("run", "--max-tokens", "2", "--param", "reply_words=50", "--format", "json", "Say a lot").json()
    assert as_json["stop_reason"] == "max_tokens" and as_json["model"] == "mock"
    assert rkat("run", "--format", "json", "Short").json()["stop_reason"] == "end_turn"


def test_session_list_shows_title_model_status_and_a_running_turn(rkat):
    rkat("run", "What is the capital of France?")
    running = subprocess.Popen(
        rkat.argv("run", "--param", "reply_words=2000", "--param", "token_delay_ms=20", "A long one please"),
        cwd=rkat.cwd, env=rkat.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            table = rkat("session", "list").out.splitlines()
            if len(table) == 3 and "running" in table[1]:
                break
            assert time.monotonic() < deadline, table
            time.sleep(0.1)
        assert "(first turn running)" in table[1] and " 0+ " in table[1]
        assert "What is the capital of Fr" in table[2] and " mock " in table[2] and " idle " in table[2]
    finally:
        running.send_signal(signal.SIGINT)
        running.wait(30)


def test_ctrl_c_while_waiting_clears_the_spinner(rkat):
    code, text = run_in_terminal(rkat.argv("run", "--param", "first_token_latency_ms=5000", "Hello"), rkat.cwd,
                                 cli_env(), interrupt_after=b"waiting for the model")
    assert code == 130, text
    before = text[:text.index("Interrupting")]
    # The last thing drawn before the message is the erase, not a spinner frame.
    assert before.endswith("\r\x1b[K\r\n") or before.endswith("\r\x1b[K\n") or before.endswith("\r\x1b[K"), repr(before)


def test_shell_expanded_tilde_n_gets_a_hint(rkat, tmp_path):
    rkat("run", "Hello")
    failed = rkat("session", "show", str(tmp_path), expect=10)
    assert "quote it, '~1'" in failed.err


def test_an_interrupted_turn_counts_the_tokens_it_streamed(rkat):
    running = subprocess.Popen(
        rkat.argv("run", "--param", "reply_words=3000", "--param", "token_delay_ms=5", "A long one please"),
        cwd=rkat.cwd, env=rkat.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while "running" not in rkat("session", "list").out:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # let some text stream
        rkat("session", "interrupt", "last")
    finally:
        running.wait(30)
    shown = rkat("session", "show", "last", "--format", "json").json()
    partial = shown["messages"][-1]
    assert partial["stop_reason"] == "cancelled"
    streamed = partial["blocks"][0]["data"]["text"]
    assert streamed and shown["session"]["usage"]["output_tokens"] >= len(streamed) // 4 > 0
