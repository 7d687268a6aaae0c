"""``rkat session events|stop-run|inject``: a session's event log, run-fenced stop, context injection."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import asyncclick as click
import msgspec

from meerkat.events import encode_envelope

from .context import realm_options, service_for
from .handles import resolve_session
from .output import print_json

if TYPE_CHECKING:
    from meerkat.events import EventEnvelope

__all__ = ["LIVE_COMMANDS"]

_SESSION = click.argument("session", metavar="SESSION")


def _event_line(envelope: "EventEnvelope") -> str:
    """One event for people: seq, type and what matters of it."""
    payload = msgspec.to_builtins(envelope.payload)
    kind = payload.pop("type", "?")
    if kind in ("text_delta", "reasoning_delta"):
        detail = json.dumps(payload.get("delta", ""), ensure_ascii=False)
    elif kind == "run_started":
        detail = f"run {payload.get('identity', {}).get('run_id', '?')}"
    elif kind == "run_failed":
        detail = payload.get("error_report", {}).get("message", "")
    elif kind == "stream_truncated":
        detail = f"{payload.get('reason', {}).get('dropped', '?')} events dropped"
    else:
        detail = ""
    seq = "-" if envelope.seq == 0 else str(envelope.seq)
    return f"{seq:>6}  {kind}{'  ' + detail if detail else ''}"


@click.command("events")
@_SESSION
@click.option("--after", type=click.IntRange(0), default=0, show_default=True, metavar="SEQ",
              help="Only events after this seq (a cursor: the last seq you have).")
@click.option("--follow", "-f", is_flag=True, help="After the logged events, keep following live ones "
                                                   "(any process's turns) until Ctrl-C or archive.")
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")), default="text",
              show_default=True, help="text: one line per event; json: one event envelope (JSON) per line.")
@realm_options
@click.pass_context
async def events_command(ctx: click.Context, session: str, after: int, follow: bool, output_format: str) -> None:
    """Print a session's events from its durable event log (archived sessions too).

    Every event a turn publishes is logged when the turn commits, so this works
    from any process and after restarts. A cursor older than the log keeps
    (`limits.event_retention`) fails with STALE_CURSOR, naming where to resume.

    \b
    Examples:
      rkat session events last
      rkat session events last --after 120 --format json
      rkat session events 01936f8a --follow
    """
    async with service_for(ctx, read_only=not follow) as service:
        session_id = await resolve_session(service, session)
        async with aclosing(service.follow_events(session_id, after_seq=after, follow=follow)) as events:
            async for envelope in events:
                if output_format == "json":
                    click.echo(encode_envelope(envelope).decode())
                else:
                    click.echo(_event_line(envelope))


@click.command("stop-run")
@_SESSION
@click.argument("run_id", metavar="RUN_ID")
@click.option("--reason", default="stopped from the CLI", show_default=True, help="Why (kept with the run).")
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@realm_options
@click.pass_context
async def stop_run_command(ctx: click.Context, session: str, run_id: str, reason: str, output_format: str) -> None:
    """Stop run RUN_ID of a session, only if it is still the current run.

    Unlike `rkat session interrupt`, a turn started after RUN_ID is never hit.
    The run may be in any process of the realm; this returns once it has
    ended (its partial answer kept). RUN_ID is the run_started event's
    identity.run_id (see `rkat session events`).

    \b
    Examples:
      rkat session stop-run last 01936f8a-7b2c-7000-8000-0000000000aa
    """
    async with service_for(ctx, read_only=True) as service:
        session_id = await resolve_session(service, session)
        receipt = await service.stop_run(session_id, run_id, reason=reason)
    if output_format == "json":
        print_json({"session_id": session_id, "receipt": receipt})
        return
    outcome = receipt["outcome"]
    if outcome == "stopped":
        click.echo(f"Stopped run {run_id} of session {session_id}.")
    elif outcome == "not_current":
        current = receipt.get("current_run_id")
        now = f"the current run is {current}" if current else "no run is running"
        click.echo(f"Run {run_id} is not the current run of session {session_id} ({now}); nothing stopped.")
    else:
        click.echo(f"Run {run_id} of session {session_id} cannot be stopped now (state: {receipt.get('state')}).")


@click.command("inject")
@_SESSION
@click.argument("text")
@click.option("--source", default=None, help="Who adds it (kept with the system message).")
@click.option("--idempotency-key", default=None, help="Makes a retry safe: the same key applies once.")
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@realm_options
@click.pass_context
async def inject_command(ctx: click.Context, session: str, text: str, source: str | None,
                         idempotency_key: str | None, output_format: str) -> None:
    """Add TEXT to a session as context, without running a turn.

    It becomes a durable system message that the model sees from its next
    call on. Use `-` as TEXT to read it from stdin.

    \b
    Examples:
      rkat session inject last "The deploy finished at 14:02."
      cat notes.md | rkat session inject last - --source notes
    """
    if text == "-":
        text = click.get_text_stream("stdin").read()
    async with service_for(ctx) as service:
        session_id = await resolve_session(service, session)
        outcome = await service.inject_context(session_id, text, source=source, idempotency_key=idempotency_key)
    body: dict[str, Any] = {"session_id": session_id, "status": "applied" if outcome.accepted else "duplicate",
                            "input_id": outcome.record.input_id}
    if output_format == "json":
        print_json(body)
    elif outcome.accepted:
        click.echo(f"Injected into session {session_id} (input {outcome.record.input_id}).")
    else:
        click.echo(f"Already injected with this key (input {outcome.record.input_id}); nothing added.")


#: Added to ``rkat session``.
LIVE_COMMANDS = (events_command, stop_run_command, inject_command)
