"""``rkat chat``: an interactive session in the terminal (bare ``rkat`` on a terminal starts it).

Each line typed is a turn, streamed as ``rkat run --stream`` shows it. Ctrl-C
during a reply interrupts that turn (the partial answer is kept) and returns to
the prompt; Ctrl-C at the prompt, or Ctrl-D, leaves. Lines starting with ``/``
are commands (``/help`` lists them). Typed lines are kept in a history file
(``$XDG_STATE_HOME/rkat/chat_history``) that the arrow keys recall.

The prompt is read in a worker thread (readline's line editing), while the trio
thread watches for Ctrl-C; leaving abandons that read and puts the terminal back
as it was.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncclick as click
import trio

from meerkat.errors import MeerkatError

from .context import realm_options, service_for
from .handles import resolve_session, short_handle
from .render import StreamView
from .terminal_text import visible
from .turn import Presentation, run_turn

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["chat_command"]

_HELP = """\
Commands:
  /model [MODEL]     show or set the model of the next turns (a new session starts with it)
  /new               start a new session with the next line
  /resume SESSION    continue another session (last, ~N, an id or a prefix)
  /history           show this session's transcript
  /help              this list
  /exit              leave (Ctrl-D too; Ctrl-C interrupts a reply, at the prompt it leaves)"""


def _history_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "rkat" / "chat_history"


class _Terminal:
    """Line input with readline history, restored on the way out."""

    def __init__(self) -> None:
        self._saved: Any = None
        self._readline: Any = None
        try:
            import termios

            self._saved = termios.tcgetattr(sys.stdin.fileno())
        except Exception:  # noqa: BLE001 - not a terminal: nothing to restore
            self._saved = None
        try:
            import readline

            self._readline = readline
            readline.read_history_file(_history_file())
        except Exception:  # noqa: BLE001 - no readline or no history yet
            pass

    async def read(self, prompt: str) -> str | None:
        """The next line, or None when the user leaves (Ctrl-D, Ctrl-C)."""
        outcome: dict[str, str | None] = {}
        with trio.open_signal_receiver(signal.SIGINT) as sigints:
            async with trio.open_nursery() as nursery:
                async def read_line() -> None:
                    try:
                        outcome["line"] = await trio.to_thread.run_sync(input, prompt, abandon_on_cancel=True)
                    except EOFError:
                        outcome["line"] = None
                    nursery.cancel_scope.cancel()

                async def leave_on_sigint() -> None:
                    async for _ in sigints:
                        outcome["line"] = None
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(read_line)
                nursery.start_soon(leave_on_sigint)
        return outcome.get("line")

    def close(self) -> None:
        """Save the history and give the terminal back as it was."""
        if self._readline is not None:
            try:
                _history_file().parent.mkdir(parents=True, exist_ok=True)
                self._readline.write_history_file(_history_file())
            except OSError:
                pass
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            except Exception:  # noqa: BLE001
                pass


class _Chat:
    def __init__(self, service: "SessionService", model: str | None, provider: str | None) -> None:
        self.service = service
        self.model = model
        self.provider = provider
        self.session_id: str | None = None

    async def turn(self, prompt: str) -> None:
        options: dict[str, Any] = {k: v for k, v in (("model", self.model), ("provider", self.provider)) if v}
        presentation = Presentation(stream=True, view=StreamView())
        if self.session_id is None:
            async def start() -> Any:
                return await self.service.create_session_streaming(prompt, **options)
        else:
            session_id = self.session_id

            async def start() -> Any:
                return await self.service.start_turn_streaming(session_id, prompt, **options)
        started: list[str] = []

        def continue_here(session_id: str) -> str:
            started.append(session_id)
            return "The partial answer is kept; the next line continues this session."

        try:
            result = await run_turn(self.service, start, presentation, resumed=self.session_id is not None,
                                    continue_hint=continue_here)
        except click.exceptions.Exit:
            # Interrupted (Ctrl-C): the partial answer is kept; carry on in the same session
            # (the one this turn ran in, not whichever the realm touched last).
            self.session_id = started[0] if started else self.session_id
            return
        self.session_id = result.session_id

    async def command(self, line: str) -> bool:
        """Run a /command; False when it asks to leave."""
        name, _, arg = line[1:].strip().partition(" ")
        arg = arg.strip()
        if name in ("exit", "quit", "q"):
            return False
        if name in ("help", "h", "?"):
            click.echo(_HELP)
        elif name == "model":
            if arg:
                self.model = arg
                click.echo(f"model: {arg} (from the next turn)")
            else:
                click.echo(f"model: {self.model or '(the realm default)'}")
        elif name == "new":
            self.session_id = None
            click.echo("The next line starts a new session.")
        elif name == "resume":
            self.session_id = await resolve_session(self.service, arg or "last")
            click.echo(f"Continuing session {short_handle(self.session_id)}.")
        elif name == "history":
            await self.history()
        else:
            click.echo(f"Unknown command /{name}: /help lists the commands.", err=True)
        return True

    async def history(self) -> None:
        if self.session_id is None:
            click.echo("No session yet: type a message to start one.")
            return
        from .sessions import _message_lines

        offset = 0
        while True:
            page = await self.service.read_history(self.session_id, offset=offset, limit=500)
            for index, message in enumerate(page.messages, start=offset):
                click.echo(visible("\n".join(_message_lines(index, message))))
            offset += len(page.messages)
            if not page.has_more:
                return


@click.command("chat")
@click.option("--model", "-m", metavar="MODEL", help="Model of the conversation [default: the realm's].")
@click.option("--provider", "-p", metavar="PROVIDER", help="Provider, when the model does not say.")
@click.option("--resume", "resume", metavar="SESSION", help="Continue this session (last, ~N, an id or a prefix).")
@realm_options
@click.pass_context
async def chat_command(ctx: click.Context, model: str | None, provider: str | None, resume: str | None) -> None:
    """Talk with a model in the terminal: each line is a turn, streamed as it comes.

    Ctrl-C interrupts a reply (the partial answer is kept); Ctrl-C at the prompt
    or Ctrl-D leaves. /help lists the commands (/model, /new, /resume, /history).
    The arrow keys recall earlier lines. Bare `rkat` on a terminal starts this.

    \b
    Examples:
      rkat chat
      rkat chat --model claude-sonnet-4-6
      rkat chat --resume last
    """
    terminal = _Terminal()
    try:
        async with service_for(ctx) as service:
            chat = _Chat(service, model, provider)
            if resume:
                chat.session_id = await resolve_session(service, resume)
            where = f"session {short_handle(chat.session_id)}" if chat.session_id else "a new session"
            click.echo(f"rkat chat: {where} in realm {service.realm.realm_id}. "
                       f"/help for commands, Ctrl-D to leave.", err=True)
            while True:
                line = await terminal.read("> ")
                if line is None:
                    click.echo("", err=True)
                    break
                line = line.strip()
                if not line:
                    continue
                try:
                    if line.startswith("/"):
                        if not await chat.command(line):
                            break
                    else:
                        await chat.turn(line)
                except MeerkatError as exc:
                    click.echo(f"Error: {exc.message}", err=True)
            if chat.session_id:
                click.echo(f"Continue later with: rkat chat --resume {short_handle(chat.session_id)}", err=True)
    finally:
        terminal.close()
