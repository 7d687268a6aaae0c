"""``rkat chat`` in a pseudo-terminal, as a person types: turns, commands, Ctrl-C, Ctrl-D, history."""

from __future__ import annotations

import os
import pty
import select
import signal
import time

from cli_process import RKAT, Cli, cli_env


class Terminal:
    """``rkat ARGS`` on a pseudo-terminal: type lines, send Ctrl-C, read what the screen shows."""

    def __init__(self, tmp_path, *args: str) -> None:
        self.env = cli_env(HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "xdg-state"))
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.chdir(tmp_path)
                os.execve(RKAT, [RKAT, "--state-root", str(tmp_path / "state"), *args], self.env)
            finally:
                os._exit(127)
        self.screen = ""
        self.seen = 0  # how far expect() has matched

    def expect(self, text: str, timeout: float = 30) -> str:
        """Read until ``text`` shows up after the last match; returns the output up to it."""
        start = self.seen
        deadline = time.monotonic() + timeout
        while text not in self.screen[start:]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"never saw {text!r}; screen:\n{self.screen[start:]!r}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"the terminal closed before {text!r}; screen:\n{self.screen[start:]!r}"
                self.screen += chunk.decode(errors="replace")
        self.seen = self.screen.index(text, start) + len(text)
        return self.screen[start:self.seen]

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def ctrl_c(self) -> None:
        os.kill(self.pid, signal.SIGINT)

    def ctrl_d(self) -> None:
        os.write(self.fd, b"\x04")

    def wait(self) -> int:
        try:
            while True:
                ready, _, _ = select.select([self.fd], [], [], 30)
                if not ready:
                    break
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.screen += chunk.decode(errors="replace")
        finally:
            os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def test_chat_turns_commands_interrupt_and_leave(tmp_path):
    term = Terminal(tmp_path, "chat")
    term.expect("/help for commands")
    term.expect("> ")
    term.type("What is the capital of France?")
    term.expect("Mock reply to: What is the capital of France?")
    term.expect("> ")
    term.type("And Spain?")  # the same session continues
    term.expect("Mock reply to: And Spain?")
    term.expect("> ")
    term.type("/history")
    shown = term.expect("> ")
    assert "What is the capital of France?" in shown and "And Spain?" in shown
    term.type("/help")
    assert "/resume SESSION" in term.expect("> ")
    term.type("/model gpt-nope")
    term.expect("> ")
    term.type("/model mock")
    term.expect("model: mock")
    term.type("/new")
    term.expect("The next line starts a new session.")
    term.type("A fresh start")
    term.expect("Mock reply to: A fresh start")
    term.expect("> ")
    term.type("/history")
    fresh = term.expect("> ")
    assert "A fresh start" in fresh and "And Spain?" not in fresh
    term.ctrl_d()
    assert term.wait() == 0
    assert "Continue later with: rkat chat --resume" in term.screen


def test_ctrl_c_interrupts_a_reply_then_a_second_leaves(tmp_path):
    Cli(tmp_path / "state", tmp_path)("config", "set", "mock.token_delay_ms", "300")  # a reply worth interrupting
    term = Terminal(tmp_path, "chat")
    term.expect("> ")
    term.type("tell me about the sea")
    term.expect("Mock")
    term.ctrl_c()
    interrupted = term.expect("> ")  # still chatting, in the same session
    assert "Interrupted. The partial answer is kept; the next line continues this session." in interrupted
    assert "rkat run --resume" not in interrupted  # no command to type: the next line continues
    term.type("/history")
    assert "ASSISTANT (cancelled):" in term.expect("> ")
    term.ctrl_c()  # at the prompt: leave
    assert term.wait() == 0
    assert "Continue later with: rkat chat --resume" in term.screen


def test_history_of_typed_lines_is_kept(tmp_path):
    term = Terminal(tmp_path, "chat")
    term.expect("> ")
    term.type("remember this line")
    term.expect("Mock reply to: remember this line")
    term.expect("> ")
    term.ctrl_d()
    assert term.wait() == 0
    assert "remember this line" in (tmp_path / "xdg-state" / "rkat" / "chat_history").read_text()


def test_bare_rkat_on_a_terminal_starts_chat(tmp_path):
    term = Terminal(tmp_path)
    term.expect("rkat chat: a new session")
    term.expect("> ")
    term.ctrl_d()
    assert term.wait() == 0
