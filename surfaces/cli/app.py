"""The root ``rkat`` command group: commands, aliases and the realm options."""

from __future__ import annotations

import sys

import asyncclick as click

from .config import config_group
from .history import HISTORY_COMMANDS
from .live import LIVE_COMMANDS
from .context import realm_options
from .log_options import log_options
from .chat import chat_command
from .doctor import doctor_command
from .models import models_command
from .realms import realm_group
from .run import continue_command, resume_command, run_command
from .sessions import session_group

__all__ = ["cli", "COMMAND_NAMES"]

#: Other spellings the seed documentation uses, and what they mean.
ALIASES = {"sessions": "session", "continue": "c"}


class _AliasedGroup(click.Group):
    """A group that also answers to the names in :data:`ALIASES`."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))

    async def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        # Report the canonical name (so `rkat sessions list --help` says `rkat session list`).
        name, command, rest = await super().resolve_command(ctx, args)
        return (command.name if command else name), command, rest


@click.group(cls=_AliasedGroup, context_settings={"help_option_names": ["-h", "--help"]},
             invoke_without_command=True)
@click.version_option(package_name="rkat", prog_name="rkat", message="%(prog)s %(version)s")
@realm_options
@log_options
@click.pass_context
async def cli(ctx: click.Context) -> None:
    """rkat: run LLM agent sessions from the shell (sessions, streaming, config, realms).

    A PROMPT on its own runs it: `rkat "hi"` is `rkat run "hi"`. Without
    --model, the offline mock model answers, so everything works without a key.

    \b
    Examples:
      rkat run "What is the capital of France?"
      rkat run --resume "Now explain it in more detail"
      rkat c "Keep going"
      rkat run --stream "Tell me a story"
      rkat session list
      rkat config get --format json
      rkat models

    Realm options may also follow the command (rkat session list -r team).
    Exit codes: 0 ok, 2 usage/invalid input, 10 session not found, 11 session
    busy, 14 turn interrupted from elsewhere, 15 config generation conflict,
    20 provider error, 21 budget exhausted, 23 agent error (turn limit or a
    failed tool), 130 interrupted with Ctrl-C, 1 anything else (see docs/cli.md).

    Without a command, on a terminal, `rkat` starts `rkat chat`.
    """
    if ctx.invoked_subcommand is not None:
        return
    chat = ctx.command.get_command(ctx, "chat") if isinstance(ctx.command, click.Group) else None
    if chat is not None and sys.stdin.isatty() and sys.stdout.isatty():
        await ctx.invoke(chat)
        return
    click.echo(ctx.get_help())  # not a terminal: the help, and success (nothing was wrong)


@click.command("help")
@click.argument("command", nargs=-1)
@click.pass_context
async def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show the help of rkat or of one of its commands.

    \b
    Examples:
      rkat help
      rkat help session list
    """
    root = ctx.find_root()
    target: click.Command = root.command
    names = ["rkat"]
    for name in command:
        sub = target.get_command(ctx, name) if isinstance(target, click.Group) else None
        if sub is None:
            raise click.UsageError(f"No such command {' '.join([*names[1:], name])!r}.", ctx)
        target, names = sub, [*names, sub.name or name]
    click.echo(target.get_help(click.Context(target, info_name=" ".join(names), parent=None)))


for _command in (*HISTORY_COMMANDS, *LIVE_COMMANDS):
    session_group.add_command(_command)
for _command in (run_command, continue_command, resume_command, session_group, config_group, models_command,
                 realm_group, doctor_command, chat_command, help_command):
    cli.add_command(_command)

#: Every name that is a command (the prompt-first shorthand never takes these as a prompt).
COMMAND_NAMES = frozenset(cli.commands) | frozenset(ALIASES)
