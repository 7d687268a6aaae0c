"""``rkat session fork|revisions|restore|export|system-prompt`` and ``rkat run --fork SESSION@N``."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import asyncclick as click

from meerkat.errors import InvalidParams

from .context import realm_options, service_for
from .handles import resolve_session
from .inputs import parse_labels
from .output import print_json
from .render import StreamView
from .turn import Presentation, run_turn

__all__ = ["HISTORY_COMMANDS", "split_fork_target", "fork_and_run"]

_SESSION = click.argument("session", metavar="SESSION")
_FORK_TARGET = re.compile(r"^(?P<session>.+?)(?:@(?P<at>\d+))?$")


def split_fork_target(target: str) -> tuple[str, int | None]:
    """``SESSION@N`` as (SESSION, N); N is None (all rows) when there is no ``@N``."""
    match = _FORK_TARGET.fullmatch(target.strip())
    if match is None or "@" in match.group("session"):
        raise InvalidParams(f"--fork takes SESSION or SESSION@N (N: how many messages to keep), got {target!r}")
    at = match.group("at")
    return match.group("session"), None if at is None else int(at)


async def fork_and_run(ctx: click.Context, source: str, at: int | None, prompt: str | None,
                       labels: dict[str, str] | None, presentation: Presentation,
                       overrides: dict[str, Any] | None = None) -> None:
    """Fork ``source`` at ``at`` (all rows when None); with a prompt, run a turn on the fork."""
    async with service_for(ctx) as service:
        source_id = await resolve_session(service, source)
        fork = await service.fork_session(source_id, message_index=at, labels=labels)
        click.echo(f"Forked session {fork.session_id} from {source_id} at message {fork.fork_point} "
                   f"({fork.message_count} messages)", err=True)
        if prompt is None:
            if presentation.output_format == "json":
                print_json(fork.to_wire())
            else:
                click.echo(f"Forked session: {fork.session_id}\nSession Ref: {fork.session_ref}\n"
                           f"From: {source_id} (revision {fork.source_revision}) at message {fork.fork_point}")
            return
        await run_turn(service, lambda: service.start_turn_streaming(fork.session_id, prompt, **(overrides or {})),
                       presentation, resumed=True)


@click.command("fork")
@_SESSION
@click.argument("prompt", required=False)
@click.option("--at", "at", type=click.IntRange(0), metavar="N",
              help="Keep the first N messages (see `rkat session show`) [default: all].")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Labels of the fork (repeatable) [default: the source's].")
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="text: for people; json: for scripts.")
@realm_options
@click.pass_context
async def fork_command(ctx: click.Context, session: str, prompt: str | None, at: int | None,
                       labels: tuple[str, ...], output_format: str) -> None:
    """Fork a session: a new session with the first N messages of SESSION; SESSION is not changed.

    With a PROMPT, runs it as the fork's next turn (as `rkat run --fork SESSION@N PROMPT`).
    The fork keeps the source's model and settings.

    \b
    Examples:
      rkat session fork last
      rkat session fork last --at 2 "Try a different approach"
      rkat session fork 019c8b99 --at 4 --label branch=b --format json
    """
    await fork_and_run(ctx, session, at, prompt, parse_labels(labels) or None,
                       Presentation(output_format, False, StreamView()))


@click.command("revisions")
@_SESSION
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="text: for people; json: for scripts.")
@realm_options
@click.pass_context
async def revisions_command(ctx: click.Context, session: str, output_format: str) -> None:
    """List a session's transcript revisions (r0 is the transcript before any rewrite).

    Every rewrite, restore or system-prompt update makes a new revision; the old
    ones stay readable (GET /sessions/{id}/revisions/{rN}, the SDKs) and
    `rkat session restore SESSION rN` brings one back.

    \b
    Examples:
      rkat session revisions last
      rkat session revisions 019c8b99 --format json
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        listing = await service.transcript_revisions(session_id, limit=1000)
    if output_format == "json":
        print_json(listing.to_wire())
        return
    click.echo(f"Session: {session_id}\nHead revision: {listing.head_revision}")
    if not listing.entries:
        click.echo("No rewrites: the transcript is its first revision, r0.")
        return
    rows = [("REVISION", "PARENT", "COMMITTED (UTC)", "MESSAGES", "REASON", "ACTOR")]
    for c in listing.entries:
        when = datetime.fromtimestamp(c.committed_at_ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        reason = c.reason_kind + (f" ({c.reason_note})" if c.reason_note else "")
        if c.restored_from:
            reason += f" [restores {c.restored_from}]"
        rows.append((c.revision, c.parent_revision, when, f"{c.messages_before} -> {c.messages_after}", reason,
                     c.actor or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    click.echo("\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows))


@click.command("restore")
@_SESSION
@click.argument("revision")
@click.option("--reason", default="restore", show_default=True, help="Why (kept with the new revision).")
@realm_options
@click.pass_context
async def restore_command(ctx: click.Context, session: str, revision: str, reason: str) -> None:
    """Make an older transcript revision current again (as a new revision; nothing is lost).

    \b
    Examples:
      rkat session restore last r0
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        result = await service.restore_transcript_revision(session_id, revision, reason={"kind": reason},
                                                           actor="rkat")
    click.echo(f"Restored {revision} of session {session_id} as {result.commit.revision} "
               f"({result.message_count} messages)")


@click.command("export")
@_SESSION
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("atif", "json", "markdown")),
              default="atif", show_default=True,
              help="atif: an ATIF trajectory for evaluation tools; json: the rows; markdown: for people.")
@click.option("--agent-name", metavar="NAME", help="ATIF agent.name [default: rkat].")
@click.option("--file", "path", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write to FILE instead of stdout.")
@realm_options
@click.pass_context
async def export_command(ctx: click.Context, session: str, output_format: str, agent_name: str | None,
                         path: str | None) -> None:
    """Export a session's transcript: ATIF (default), JSON or Markdown.

    \b
    Examples:
      rkat session export last > trajectory.json
      rkat session export last --format markdown
      rkat session export 019c8b99 --format json --file session.json
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        document = await service.export_session(session_id, format=output_format, agent_name=agent_name)
    text = document if isinstance(document, str) else json.dumps(document, indent=2, ensure_ascii=False)
    if path is None:
        click.echo(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    except OSError as exc:
        raise InvalidParams(f"cannot write {path}: {exc.strerror}") from None
    click.echo(f"Exported session {session_id} ({output_format}) to {path}", err=True)


@click.command("system-prompt")
@_SESSION
@click.argument("text")
@click.option("--key", default="main", show_default=True, help="The prompt slot to set.")
@realm_options
@click.pass_context
async def system_prompt_command(ctx: click.Context, session: str, text: str, key: str) -> None:
    """Set a session's system prompt from its next model call (a new revision; the old stays readable).

    \b
    Examples:
      rkat session system-prompt last "You are a careful reviewer."
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        result = await service.update_system_prompt(session_id, key, text, actor="rkat", adopt_existing=True)
    if result.status == "duplicate":
        click.echo(f"Session {session_id}: system prompt {key!r} already is that text (version {result.version})")
    else:
        click.echo(f"Session {session_id}: system prompt {key!r} is now version {result.version} "
                   f"(revision {result.transcript_revision})")


#: Added to ``rkat session``.
HISTORY_COMMANDS = (fork_command, revisions_command, restore_command, export_command, system_prompt_command)
