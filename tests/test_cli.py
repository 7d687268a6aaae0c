"""`rkat run`, its shorthands and resume forms, streaming views, stdin and Ctrl-C, through the installed CLI."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time

import pytest

from cli_process import Cli, cli_env


@pytest.fixture
def rkat(tmp_path) -> Cli:
    return Cli(tmp_path / "state", tmp_path)


def _unique_prefix(session_id: str, others: list[str]) -> str:
    for size in range(1, len(session_id) + 1):
        if not any(other.startswith(session_id[:size]) for other in others):
            return session_id[:size]
    raise AssertionError("ids are equal")


def test_new_sessions_and_every_resume_form(rkat):
    first = rkat("run", "--format", "json", "What is the capital of France?").json()
    assert first["text"] == "Mock reply to: What is the capital of France?"
    assert first["turns"] == 1 and first["session_ref"].endswith(":" + first["session_id"])
    second = rkat("run", "--json", "--label", "team=alpha", "Second session").json()["session_id"]
    # The bare-prompt shorthand: a first word that is no command runs it.
    third = rkat("--format", "json", "Third session").json()["session_id"]
    a = first["session_id"]
    assert len({a, second, third}) == 3

    # The seed's multi-turn form: --resume takes the prompt as its value, and resumes the most recent.
    resumed = rkat("run", "--resume", "Now explain it in more detail", "--format", "json").json()
    assert resumed["session_id"] == third and resumed["text"] == "Mock reply to: Now explain it in more detail"
    # ~2 is the second most recently updated: `third` was just updated, so `second`.
    assert rkat("run", "--resume", "~2", "Go back to this one", "--json").json()["session_id"] == second
    # A short handle: the last 8 characters (what the CLI prints), or a unique prefix.
    assert rkat("run", "--resume", a[-8:], "Keep going", "--json").json()["session_id"] == a
    prefix = _unique_prefix(third, [a, second])
    assert rkat("run", "--resume", prefix, "Keep going", "--json").json()["session_id"] == third
    assert rkat("run", "--resume", second.upper(), "By full id", "--json").json()["session_id"] == second
    # `last`, `rkat c`, `rkat continue` and `rkat resume` all reach the most recent session (now `second`).
    assert rkat("run", "--resume", "last", "Keep going", "--json").json()["session_id"] == second
    assert rkat("c", "Keep going", "--json").json()["session_id"] == second
    assert rkat("continue", "--json", "And then?").json()["session_id"] == second
    assert rkat("resume", "~3", "Resume alias", "--json").json()["session_id"] == a
    after = rkat("resume", "Most recent again", "--json").json()
    assert after["session_id"] == a and after["text"] == "Mock reply to: Most recent again"

    common = os.path.commonprefix([a, second, third])[:6] or a[0]
    ambiguous = rkat("run", "--resume", common, "Which one?", expect=2)
    assert ambiguous.err.startswith(f"Error: Ambiguous session handle '{common}': matches 3 sessions")
    for session_id in (a, second, third):
        assert f"{session_id} (handle {session_id[-8:]})" in ambiguous.err
    missing = rkat("run", "--resume", "ffffffff0000", "Anyone?", expect=10)
    assert missing.err == "Error: No session matching 'ffffffff0000'\n"
    out_of_range = rkat("run", "--resume", "~9", "Too far", expect=10)
    assert "~9 is out of range" in out_of_range.err
    assert rkat("run", "--resume", "~0", "Zero", expect=2).err.startswith("Error: Invalid relative session '~0'")


def test_text_output_stdin_and_params(rkat):
    piped = rkat("run", stdin="What is piped in?\n")
    assert piped.out == "Mock reply to: What is piped in?\n"
    assert re.fullmatch(r"\n\[Session: [0-9a-f]{8} \| mock \| 1 model call \| Tokens: \d+ in / 7 out\]\n", piped.err)
    assert "\r" not in piped.err  # no spinner when not on a terminal

    context = rkat("Summarise this", stdin="line one\nline two\n")
    assert context.out == "Mock reply to: <stdin>\nline one\nline two\n</stdin>\n\nSummarise this\n"

    # --param values are JSON when they parse (reply_words=3 is the integer 3), strings otherwise.
    words = rkat("run", "-s", "--param", "reply_words=3", "--param", "token_delay_ms=1", "Three words")
    assert words.out == "lorem ipsum dolor\n"
    assert rkat("run", "-s", "--param", "reply=plain text", "Echo").out == "plain text\n"
    # --max-tokens caps each model call (the mock counts a word as a token); --system-prompt is kept.
    capped = rkat("run", "--system-prompt", "Be brief.", "--max-tokens", "2", "--param", "reply_words=5", "x")
    assert capped.out == "lorem ipsum \n"
    shown = rkat("session", "show", "last").out
    assert "[0] SYSTEM:\n  Be brief.\n" in shown and "[2] ASSISTANT (max_tokens):\n  lorem ipsum" in shown

    no_prompt = rkat("run", "--stdin", "off", expect=2)
    assert no_prompt.err.startswith("Error: no prompt")
    bad_param = rkat("run", "--param", "reply", "x", expect=2)
    assert bad_param.err == "Error: Invalid --param 'reply': expected KEY=VALUE\n"
    unknown = rkat("run", "--param", "temperature=0.2", "x", expect=2)
    assert unknown.err.startswith("Error: ") and "temperature" in unknown.err and "mock" in unknown.err


def test_an_open_silent_stdin_pipe_does_not_hang_the_run(rkat):
    """A harness that hands `rkat` a stdin pipe and never writes to it nor closes it still gets its answer."""

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(rkat.argv(*args), cwd=rkat.cwd, env=rkat.env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    silent = [start("run", "Hello from a harness"), start("Bare prompt from a harness")]
    # `--stdin on` waits for the pipe's end; `auto` without a PROMPT waits too (stdin is the only prompt).
    forced, prompt_only = start("run", "--stdin", "on", "Review this"), start("run")
    try:
        for proc, expected in zip(silent, ["Hello from a harness", "Bare prompt from a harness"]):
            # The pipe stays open while we wait: the deadline only turns a hang into a failure.
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
            assert proc.stdout.read() == f"Mock reply to: {expected}\n"
            assert proc.stderr.read().startswith("Note: stdin was not read (nothing arrived within 0.5 s); "
                                                 "use --stdin on to wait for it")
        for proc, text in ((forced, "diff --git a/x b/x\n"), (prompt_only, "What is piped in?\n")):
            proc.stdin.write(text)
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        assert forced.stdout.read() == "Mock reply to: <stdin>\ndiff --git a/x b/x\n</stdin>\n\nReview this\n"
        assert prompt_only.stdout.read() == "Mock reply to: What is piped in?\n"
    finally:
        for proc in (*silent, forced, prompt_only):
            if proc.poll() is None:
                proc.kill()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                pipe.close()


def test_stream_views(rkat):
    mux = rkat("run", "-s", "-w", "mux", "--param", "reply=one two", "Plan the release")
    assert mux.out == "[primary] one two\n"
    primary = rkat("run", "--stream", "--stream-view", "primary", "--param", "reply=one two", "Plan")
    assert primary.out == "one two\n"
    focus = rkat("run", "--stream", "--stream-view", "focus", "--stream-focus", "mob:planner", "Draft steps",
                 expect=2)
    assert "stream focus 'mob:planner' did not match any emitted scope (discovered scopes: primary)" in focus.err
    # The run still happened and its answer is shown and kept.
    assert focus.out == "Mock reply to: Draft steps\n"
    session_id = re.search(r"rkat session show (\S+)", focus.err).group(1)
    assert "Draft steps" in rkat("session", "show", session_id).out
    bad_scope = rkat("run", "-s", "-f", "mob:a b", "x", expect=2)
    assert "invalid stream scope 'mob:a b'" in bad_scope.err


def _read_until(proc: subprocess.Popen, pattern: bytes, deadline_s: float = 30.0) -> bytes:
    """Read the child's stdout until ``pattern`` shows up (the deadline only guards a hang)."""
    seen = b""
    fd = proc.stdout.fileno()
    end = time.monotonic() + deadline_s
    while pattern not in seen:
        remaining = end - time.monotonic()
        assert remaining > 0, f"no {pattern!r} in {seen!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"stdout closed early: {seen!r}"
            seen += chunk
    return seen


def test_ctrl_c_mid_stream_keeps_the_partial_answer(rkat):
    argv = rkat.argv("run", "--stream", "--param", "reply_words=5000", "--param", "token_delay_ms=10",
                     "Tell me a long story")
    proc = subprocess.Popen(argv, cwd=rkat.cwd, env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        shown = _read_until(proc, b"sit amet")
        # Another process may not start a turn on the session meanwhile.
        busy = rkat("c", "Me too", expect=11)
        assert re.fullmatch(r"Error: Session \S+ is busy: turn \S+ is running\n", busy.err)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    streamed = (shown + rest).decode().strip()
    assert streamed.startswith("lorem ipsum dolor sit amet")
    session_id = re.search(r"partial answer is kept in session (\S+)", err.decode()).group(1)

    shown_session = rkat("session", "show", session_id, "--format", "json").json()
    user, assistant = shown_session["messages"]
    assert user["content"] == "Tell me a long story"
    assert assistant["stop_reason"] == "cancelled"
    partial = assistant["blocks"][0]["data"]["text"]
    # Everything the user saw is kept (the host may have produced a little more before the interrupt landed).
    assert partial.startswith(streamed) and len(partial.split()) < 5000
    text = rkat("session", "show", session_id).out
    assert "ASSISTANT (cancelled):" in text and streamed[:60] in text


def test_spinner_and_default_streaming_on_a_terminal(rkat):
    """On a terminal the answer streams by default, after a spinner that is erased."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        try:
            os.chdir(rkat.cwd)
            os.execve(rkat.argv()[0], rkat.argv("run", "--param", "first_token_latency_ms=300", "Hello terminal"),
                      cli_env())
        finally:
            os._exit(127)
    output = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    text = output.decode()
    assert "⠋ waiting for the model" in text and "\r\x1b[K" in text
    assert "Mock reply to: Hello terminal" in text
    assert text.index("waiting for the model") < text.index("Mock reply to")
