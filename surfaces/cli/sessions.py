"""``rkat session list|show|delete|interrupt`` (``rkat sessions ...`` works too; an archived session's
``show`` still prints its transcript)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

import asyncclick as click

from meerkat.errors import SessionNotFound
from meerkat.transcript import BlockAssistantMessage, Message, SystemMessage, ToolResultsMessage, UserMessage
from meerkat.views import session_ref

from .context import realm_options, service_for
from .handles import resolve_session
from .inputs import parse_labels
from .output import print_json
from .terminal_text import visible

if TYPE_CHECKING:
    from meerkat.views import SessionSummary

__all__ = ["session_group"]

_FORMAT = click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")),
                       default="text", show_default=True, help="text: for people; json: for scripts.")
_SESSION = click.argument("session", metavar="SESSION")
#: Page size when reading a whole transcript for ``show``.
_HISTORY_PAGE = 1000


@click.group("session")
def session_group() -> None:
    """List, show, delete (archive) and interrupt sessions.

    SESSION is a full id, a unique prefix or suffix of one, last, or ~N
    (~1 = the most recently updated session).

    \b
    Examples:
      rkat session list
      rkat session show last
      rkat session delete 01936f8a-7b2c-7000-8000-000000000001
    """


@session_group.command("list")
@click.option("--limit", type=click.IntRange(0, 1000), default=20, show_default=True, help="At most this many.")
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True, help="Skip this many first.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Only sessions with this label.")
@_FORMAT
@realm_options
@click.pass_context
async def list_command(ctx: click.Context, limit: int, offset: int, labels: tuple[str, ...],
                       output_format: str) -> None:
    """List sessions, most recently updated first.

    The ~N column is what `rkat run --resume ~N` takes.

    \b
    Examples:
      rkat session list
      rkat session list --limit 10
      rkat session list --limit 10 --offset 20
      rkat session list --label team=alpha --format json
    """
    async with service_for(ctx, read_only=True) as service:
        sessions = await service.list_sessions(limit=limit, offset=offset, labels=parse_labels(labels))
        titles = {} if output_format == "json" else {s.session_id: await _title(service, s) for s in sessions}
    if output_format == "json":
        print_json({"sessions": [s.to_wire() for s in sessions]})
    elif not sessions:
        # Past the end of a non-empty list, "no sessions" alone would read as "the realm is empty".
        click.echo(f"No sessions found at offset {offset} (the list ends before it; try a smaller --offset)."
                   if offset else "No sessions found.")
    else:
        click.echo(visible(_table(sessions, titles, first_index=offset + 1)))


#: Characters of the first prompt shown as a session's title.
_TITLE_CHARS = 32


async def _title(service: Any, summary: "SessionSummary") -> str:
    """The session's first prompt, shortened to one line (its rows are not committed while the first turn runs)."""
    try:
        page = await service.read_history(summary.session_id, limit=3)
    except Exception:  # noqa: BLE001 - a title is decoration; never fail the list for it
        return ""
    for row in page.messages:
        if isinstance(row, UserMessage):
            text = " ".join(_content_text(row.content).split())
            return text if len(text) <= _TITLE_CHARS else text[:_TITLE_CHARS - 1] + "…"
    return "(first turn running)" if summary.is_active else ""


def _table(sessions: list["SessionSummary"], titles: dict[str, str], *, first_index: int) -> str:
    """~N, id, title, model, status, messages, tokens, times, labels (a running turn's rows are not counted
    until it commits: its MESSAGES shows a ``+``)."""
    rows: list[tuple[str, ...]] = [("~N", "ID", "TITLE", "MODEL", "STATUS", "MESSAGES", "TOKENS", "CREATED (UTC)",
                                    "UPDATED (UTC)", "LABELS")]
    for index, s in enumerate(sessions, start=first_index):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        rows.append((f"~{index}", s.session_id, titles.get(s.session_id, "") or "-", s.model,
                     "running" if s.is_active else "idle", f"{s.message_count}{'+' if s.is_active else ''}",
                     str(s.total_tokens), _utc(s.created_at_ms), _utc(s.updated_at_ms), labels))
    if not any(row[-1] for row in rows[1:]):
        rows = [row[:-1] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _utc(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


@session_group.command("show")
@_SESSION
@_FORMAT
@realm_options
@click.pass_context
async def show_command(ctx: click.Context, session: str, output_format: str) -> None:
    """Show a session: its settings and its whole transcript.

    \b
    Examples:
      rkat session show 01936f8a-7b2c-7000-8000-000000000001
      rkat session show last
      rkat session show 5f1c9a2e --format json
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        try:
            view = await service.read_session(session_id)
        except SessionNotFound:
            view = None  # archived: its transcript stays readable (read_history raises if it never existed)
        messages: list[Message] = []
        while True:
            page = await service.read_history(session_id, offset=len(messages), limit=_HISTORY_PAGE)
            messages.extend(page.messages)
            if not page.has_more:
                break
    if output_format == "json":
        import msgspec

        print_json({"session": None if view is None else view.to_wire(), "archived": view is None,
                    "messages": msgspec.to_builtins(messages)})
        return
    if view is None:
        click.echo(f"Session: {session_id} (archived)\nMessages: {len(messages)}")
        click.echo("=" * 60)
        for index, message in enumerate(messages):
            click.echo(visible("\n" + "\n".join(_message_lines(index, message))))
        return
    click.echo(f"Session: {view.session_id}\nSession Ref: {view.session_ref}\n"
               f"Model: {view.model} ({view.provider})\nMessages: {view.message_count}\n"
               f"Tokens: {view.usage.input_tokens} in / {view.usage.output_tokens} out\n"
               f"Created: {_utc(view.created_at_ms)} UTC  Updated: {_utc(view.updated_at_ms)} UTC")
    if view.labels:
        click.echo("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(view.labels.items())))
    click.echo("=" * 60)
    for index, message in enumerate(messages):
        click.echo(visible("\n" + "\n".join(_message_lines(index, message))))


def _message_lines(index: int, message: Message) -> Iterable[str]:
    if isinstance(message, BlockAssistantMessage):
        stop = "" if message.stop_reason in ("end_turn", "tool_use") else f" ({message.stop_reason})"
        yield f"[{index}] ASSISTANT{stop}:"
        for block in message.blocks:
            yield from _indented(_block_text(block.block_type, block.data))
    elif isinstance(message, ToolResultsMessage):
        yield f"[{index}] TOOL RESULTS:"
        for result in message.results:
            status = "ERROR" if result.is_error else "OK"
            yield from _indented(f"[{status}] {result.tool_use_id}: {_content_text(result.content)[:200]}")
    else:
        role = "SYSTEM" if isinstance(message, SystemMessage) else "USER"
        if isinstance(message, SystemMessage) and message.prompt_version is not None:
            role += f" (prompt {message.prompt_version.key} v{message.prompt_version.version})"
        elif isinstance(message, SystemMessage) and message.instruction_activation is not None:
            revision = message.instruction_activation.revision
            role += f" (instruction {revision.namespace}/{revision.key} {revision.revision_id})"
        yield f"[{index}] {role}:"
        yield from _indented(_content_text(message.content))


def _block_text(block_type: str, data: dict[str, Any]) -> str:
    if block_type == "text":
        return str(data.get("text", ""))
    if block_type == "reasoning":
        return f"[thinking] {data.get('text', '')}"
    if block_type == "tool_use":
        return f"→ {data.get('name')}({json.dumps(data.get('args', {}), ensure_ascii=False)})"
    return f"[{block_type}]"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text", f"[{b.get('type')}]")) for b in content if isinstance(b, dict))


def _indented(text: str) -> Iterable[str]:
    return ("  " + line for line in (text.splitlines() or [""]))


@session_group.command("delete")
@_SESSION
@realm_options
@click.pass_context
async def delete_command(ctx: click.Context, session: str) -> None:
    """Archive a session: gone from list and new turns; `show ID` and `events ID` (full id) still read it.

    \b
    Examples:
      rkat session delete 01936f8a-7b2c-7000-8000-000000000001
      rkat session delete last
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        await service.archive(session_id)
        ref = session_ref(service.realm.realm_id, session_id)
    click.echo(f"Deleted session: {session_id}\nSession Ref: {ref}")


@session_group.command("interrupt")
@_SESSION
@realm_options
@click.pass_context
async def interrupt_command(ctx: click.Context, session: str) -> None:
    """Cancel the session's running turn, keeping its partial answer; a no-op when idle.

    The turn may run in any process on the realm (an `rkat run` in another
    terminal, rkat-rest, an SDK's rkat-rpc): it is stopped there, and this
    command returns once it has ended.

    \b
    Examples:
      rkat session interrupt 01936f8a-7b2c-7000-8000-000000000001
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        result = await service.interrupt(session_id)
    if result.interrupted:
        click.echo(f"Interrupted session: {session_id}")
    else:
        click.echo(f"Session {session_id}: no turn running; nothing to interrupt.")
