"""The ``rkat`` console script: parse, run under trio, report errors with exit codes.

Failures print ``Error: <message>`` on stderr and exit with the code the shared
error table (:mod:`meerkat.errors`) gives their error code, so the same mistake
means the same thing on every surface. Usage errors from the parser exit 2,
Ctrl-C exits 130.
"""

from __future__ import annotations

import sys
import traceback
from functools import partial
from typing import Any, Sequence

import asyncclick as click
import trio

from meerkat.errors import MeerkatError

from .app import COMMAND_NAMES, cli
from .argv import normalize_argv
from .turn import SIGINT_EXIT_CODE

__all__ = ["main", "run_cli"]

#: Exit code for a failure outside the error table (a bug, an unexpected OS error).
GENERIC_EXIT_CODE = 1
#: Commands whose positional words are a prompt (an unquoted prompt shows up as extra arguments).
PROMPT_COMMANDS = frozenset({"run", "c", "resume"})


def run_cli(argv: Sequence[str]) -> int:
    """Run one command line (without the program name) and return its exit code."""
    args = normalize_argv(list(argv), COMMAND_NAMES)
    try:
        outcome: Any = trio.run(partial(cli.main, args, prog_name="rkat", standalone_mode=False))
    except BaseException as exc:  # noqa: BLE001 - every way out becomes an exit code here
        return _exit_code_for(_leaf(exc))
    return outcome if isinstance(outcome, int) else 0


def _leaf(exc: BaseException) -> BaseException:
    """The one exception a group wraps (nurseries wrap even a single failure)."""
    while isinstance(exc, BaseExceptionGroup):
        interesting = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        exc = (interesting or list(exc.exceptions))[0]
    return exc


def _exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, MeerkatError):
        click.echo(f"Error: {exc.message}", err=True)
        return exc.spec.exit_code
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        if isinstance(exc, click.UsageError):
            _explain_unquoted_prompt(exc)
        exc.show()
        return exc.exit_code
    if isinstance(exc, (KeyboardInterrupt, click.Abort)):
        click.echo("\nInterrupted.", err=True)
        return SIGINT_EXIT_CODE
    if isinstance(exc, SystemExit):
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            # click's own answer to EPIPE (exit 1): the reader went away, which is no failure.
            _silence_stdout()
            return 0
        return exc.code if isinstance(exc.code, int) else GENERIC_EXIT_CODE
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`rkat session show last | head -c 100`): what it wanted it got.
        _silence_stdout()
        return 0
    click.echo(f"Error: internal error: {exc!r} (this is a bug; the traceback follows)", err=True)
    traceback.print_exception(exc, file=sys.stderr)
    return GENERIC_EXIT_CODE


def _explain_unquoted_prompt(exc: click.UsageError) -> None:
    """``rkat run tell me a story`` fails on extra arguments; say that the prompt wants quotes."""
    command = exc.ctx.command.name if exc.ctx is not None else None
    if command in PROMPT_COMMANDS and exc.message.startswith("Got unexpected extra argument"):
        # click prints exc.message as it is when the exception reaches it; its stubs mark the
        # attribute Final, but amending it is how the hint joins click's own error line.
        exc.message += ". A prompt of several words needs quotes: rkat run \"Tell me a story\""  # type: ignore[misc]


def main() -> None:
    """Entry point of the ``rkat`` console script."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal that cannot show "✓" or "━" gets "?" rather than a crash mid-answer.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    code = run_cli(sys.argv[1:])
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = 0
    sys.exit(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null: Python would complain about the closed pipe at exit."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
