"""Running the installed ``rkat`` executable as a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The console script pip installed next to this interpreter.
RKAT = str(Path(sys.executable).parent / "rkat")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a child: no inherited realm or mock settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RKAT_")}
    env.update(extra)
    return env


@dataclass
class CliResult:
    """What one invocation did."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON (fails the test with the output if it does not parse)."""
        try:
            return json.loads(self.out)
        except ValueError as exc:
            raise AssertionError(f"rkat {' '.join(self.args)} printed no JSON: {self.out!r} / {self.err!r}") from exc


class Cli:
    """``rkat`` bound to one state root, working directory and environment."""

    def __init__(self, state_root: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.state_root = state_root
        self.cwd = cwd
        self.env = cli_env(**(env or {}))

    def argv(self, *args: str) -> list[str]:
        """The full command line for ``args`` (the state root goes first, as a global option)."""
        return [RKAT, "--state-root", str(self.state_root), *args]

    def __call__(self, *args: str, stdin: str | None = None, expect: int | None = 0) -> CliResult:
        """Run ``rkat args...`` to completion; ``expect`` is the exit code it must have (None: any)."""
        proc = subprocess.run(self.argv(*args), cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL, timeout=60)
        result = CliResult(args, proc.returncode, proc.stdout, proc.stderr)
        if expect is not None:
            assert proc.returncode == expect, f"rkat {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
        return result


def run_in_terminal(argv: list[str], cwd: Path, env: dict[str, str], *,
                    interrupt_after: bytes | None = None, timeout: float = 60) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal to its end: ``(exit code, what the terminal showed)``.

    With ``interrupt_after``, Ctrl-C (SIGINT) is sent once that text has been shown.
    """
    import pty
    import select
    import signal

    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    output = b""
    sent = False
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if interrupt_after is not None and not sent and interrupt_after in output:
                os.kill(pid, signal.SIGINT)
                sent = True
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")
