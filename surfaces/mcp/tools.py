"""The ``meerkat_*`` tools: what each one tells the model, takes and does.

Each tool is a :class:`ToolSpec`: name, description (written for the model that
will call it), argument type (which is also its input schema) and handler. A
handler maps its arguments with :mod:`surfaces.session_params`, calls the
:class:`~actors.SessionService` and returns a JSON object (the result), or an
``isError`` result it built itself. A :class:`~meerkat.errors.MeerkatError` it
raises becomes an ``isError`` result naming the code (see :mod:`.server`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import mcp_types as types
import trio

from actors import SessionService, TurnStream
from meerkat.errors import MeerkatError
from meerkat.validation import known_session_id
from surfaces.network_config import write_config_checked
from surfaces.session_params import config_write, create_options, require_prompt, turn_options

from .arguments import (
    ConfigArguments,
    MalformedCall,
    NoArguments,
    ResumeArguments,
    RunArguments,
    SessionArguments,
    SessionsArguments,
    StreamCloseArguments,
    StreamOpenArguments,
    StreamReadArguments,
    checking_arguments,
    given,
    input_schema,
)
from .history_tools import EXPORT_DESCRIPTION, FORK_DESCRIPTION, ExportArguments, ForkArguments, HistoryTools
from .live_tools import (
    EVENTS_SINCE_DESCRIPTION,
    EXTERNAL_EVENT_DESCRIPTION,
    INJECT_DESCRIPTION,
    STOP_RUN_DESCRIPTION,
    EventsSinceArguments,
    ExternalEventArguments,
    InjectArguments,
    LiveTools,
    StopRunArguments,
)
from .notify import EventForwarder
from .results import event_payload, interrupt_payload, read_payload, run_payload, tool_error
from .streams import EventStreams
from .turns import CallKey, RunningTurns, call_key, cancels_by_closing

__all__ = ["ToolSpec", "MeerkatTools", "BENCH_TOOL_NAME"]

#: The empty tool registered only for ``bench/mcp_roundtrip.py`` (``RKAT_MCP_BENCH_TOOL=1``).
BENCH_TOOL_NAME = "bench_noop"

Ctx = Any  # mcp.server.context.ServerRequestContext; kept loose so handlers stay easy to call in tests
Handler = Callable[[Ctx, Any], Awaitable["dict[str, Any] | types.CallToolResult"]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: its listing and its handler."""

    name: str
    description: str
    arguments: type
    handler: Handler
    annotations: types.ToolAnnotations | None = None

    def listing(self) -> types.Tool:
        """The ``tools/list`` entry."""
        return types.Tool(name=self.name, description=self.description, input_schema=input_schema(self.arguments),
                          annotations=self.annotations)


_READ_ONLY = types.ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

RUN_DESCRIPTION = (
    "Start a new agent session and run its first turn: the model answers `prompt`. Blocks until the turn ends, "
    "then returns the answer in content[0].text with session_id (keep it: meerkat_resume continues the "
    "conversation), turns, tool_calls and usage. Pick the model with `model` (ids from meerkat_models_catalog); "
    "without it the realm default is used. With stream=true the turn's events (text_delta, tool calls, "
    "turn_completed, run_completed, ...) arrive as notifications while it runs. Cancelling the call "
    "interrupts the turn and keeps what was written so far; if the connection is lost instead (stdio, or "
    "handshake-era HTTP), the turn runs to its end in the session (stop it with meerkat_interrupt).")
RESUME_DESCRIPTION = (
    "Continue an existing session with a new prompt: a follow-up turn in which the model sees the whole "
    "conversation so far. Blocks until the turn ends and returns the same shape as meerkat_run. Errors: "
    "SESSION_NOT_FOUND for an unknown or archived session, SESSION_BUSY while another turn runs on it. "
    "stream=true and cancellation work as in meerkat_run.")
SESSIONS_DESCRIPTION = (
    "List the live sessions of this realm, most recently updated first. Each entry has session_id, "
    "message_count, total_tokens, is_active (a turn is running), labels and created_at/updated_at in Unix "
    "seconds. Page with limit/offset; keep only sessions carrying all given labels.")
READ_DESCRIPTION = (
    "Read one session: message_count, is_active (a turn is running), model, provider and last_assistant_text "
    "under `state`, token usage under `billing`.")
ARCHIVE_DESCRIPTION = (
    "Archive a session: it leaves meerkat_sessions and can no longer be read or resumed. A running turn "
    "finishes first. Event streams on it end with status \"closed\".")
INTERRUPT_DESCRIPTION = (
    "Stop the turn running on a session (a no-op when idle). The partial answer is kept and the session stays "
    "usable; the blocked meerkat_run/meerkat_resume call returns REQUEST_CANCELLED. `was_running` tells whether "
    "a turn was actually stopped.")
CONFIG_DESCRIPTION = (
    "Read or change the realm config (agent defaults such as agent.model and agent.max_tokens_per_turn, "
    "budgets, ...). action=get returns {config, generation, realm_id, instance_id, backend}. action=patch merges "
    "`patch` into the config (RFC 7396: objects merge, null removes a key); action=set replaces it with `config`. "
    "Both return the new config and generation. Pass expected_generation (from a get) to write only if nobody "
    "changed the config in between; otherwise the call fails with CONFIG_GENERATION_CONFLICT.")
STREAM_OPEN_DESCRIPTION = (
    "Follow a session's events from now on: every turn on it, whoever starts it (for example a long "
    "meerkat_resume running in another call). Returns stream_id; poll it with meerkat_event_stream_read and "
    "close it with meerkat_event_stream_close when done.")
STREAM_READ_DESCRIPTION = (
    "Wait for the next events of an open stream, up to timeout_ms, and return them: {status: \"events\", "
    "events: [...]}; {status: \"timeout\", events: []} when nothing happened (the stream stays open, read "
    "again); or {status: \"closed\"} when the session was archived or the stream closed (it is gone). An unknown "
    "stream_id is an INVALID_PARAMS error: open a new stream. Each event is an "
    "envelope {seq, timestamp_ms, source, payload: {type, ...}}; a turn ends with payload.type \"run_completed\" "
    "(payload.result holds the answer) or \"run_failed\".")
STREAM_CLOSE_DESCRIPTION = "Close an event stream; `closed` is false when it was already closed or never existed."
CATALOG_DESCRIPTION = (
    "List the models this host can use, by provider: each provider's default_model_id and each model's id, "
    "display_name, context_window, max_output_tokens and capabilities (profile). Use an id as `model` in "
    "meerkat_run.")


def _call(ctx: Ctx) -> CallKey | None:
    """The tool call ``ctx`` serves, for cancellation (None when the request has no id)."""
    request_id = getattr(ctx, "request_id", None)
    return call_key(ctx, request_id) if request_id is not None else None


def _client(ctx: Ctx) -> str:
    """Who is calling, for per-client limits: the HTTP client's address (stdio has one client)."""
    peer = getattr(getattr(ctx, "request", None), "client", None)
    return str(peer.host) if peer is not None and getattr(peer, "host", None) else "local"


class MeerkatTools:
    """The tools of one server, bound to its service and its event streams."""

    def __init__(self, service: SessionService, turns: RunningTurns, *, bench_tool: bool = False,
                 streams_per_client: int | None = None) -> None:
        self._service = service
        self.streams = EventStreams(service, per_client=streams_per_client)
        self.history = HistoryTools(service)
        self.live = LiveTools(service)
        self.turns = turns
        self._bench_tool = bench_tool

    def specs(self) -> list[ToolSpec]:
        """Every tool, in listing order."""
        specs = [
            ToolSpec("meerkat_run", RUN_DESCRIPTION, RunArguments, self.run),
            ToolSpec("meerkat_resume", RESUME_DESCRIPTION, ResumeArguments, self.resume),
            ToolSpec("meerkat_sessions", SESSIONS_DESCRIPTION, SessionsArguments, self.sessions, _READ_ONLY),
            ToolSpec("meerkat_read", READ_DESCRIPTION, SessionArguments, self.read, _READ_ONLY),
            ToolSpec("meerkat_archive", ARCHIVE_DESCRIPTION, SessionArguments, self.archive,
                     types.ToolAnnotations(destructive_hint=True, open_world_hint=False)),
            ToolSpec("meerkat_interrupt", INTERRUPT_DESCRIPTION, SessionArguments, self.interrupt,
                     types.ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
            ToolSpec("meerkat_config", CONFIG_DESCRIPTION, ConfigArguments, self.config),
            ToolSpec("meerkat_event_stream_open", STREAM_OPEN_DESCRIPTION, StreamOpenArguments, self.stream_open),
            ToolSpec("meerkat_event_stream_read", STREAM_READ_DESCRIPTION, StreamReadArguments, self.stream_read),
            ToolSpec("meerkat_event_stream_close", STREAM_CLOSE_DESCRIPTION, StreamCloseArguments,
                     self.stream_close),
            ToolSpec("meerkat_models_catalog", CATALOG_DESCRIPTION, NoArguments, self.models_catalog, _READ_ONLY),
            ToolSpec("meerkat_fork", FORK_DESCRIPTION, ForkArguments, self.history.fork,
                     types.ToolAnnotations(open_world_hint=False)),
            ToolSpec("meerkat_export", EXPORT_DESCRIPTION, ExportArguments, self.history.export, _READ_ONLY),
            ToolSpec("meerkat_inject_context", INJECT_DESCRIPTION, InjectArguments, self.live.inject,
                     types.ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
            ToolSpec("meerkat_stop_run", STOP_RUN_DESCRIPTION, StopRunArguments, self.live.stop_run,
                     types.ToolAnnotations(idempotent_hint=True, open_world_hint=False)),
            ToolSpec("meerkat_events_since", EVENTS_SINCE_DESCRIPTION, EventsSinceArguments, self.live.events_since,
                     _READ_ONLY),
            ToolSpec("meerkat_external_event", EXTERNAL_EVENT_DESCRIPTION, ExternalEventArguments,
                     self.live.external_event, types.ToolAnnotations(open_world_hint=False)),
        ]
        if self._bench_tool:
            specs.append(ToolSpec(BENCH_TOOL_NAME, "Benchmark aid: does nothing.", NoArguments, self.bench_noop))
        return specs

    # -- turns -------------------------------------------------------------------

    async def run(self, ctx: Ctx, args: RunArguments) -> dict[str, Any] | types.CallToolResult:
        """``meerkat_run``: create a session and run its first turn."""
        with checking_arguments():
            prompt = require_prompt({"prompt": args.prompt})
            options = create_options(given(args, without=("prompt", "stream")))
        # Shielded: once asked, the turn starts and is tracked, so a cancellation
        # arriving meanwhile still finds it (see RunningTurns).
        with trio.CancelScope(shield=True):
            stream = await self._service.create_session_streaming(prompt, **options)
            self.turns.track(_call(ctx), stream)
        return await self._follow(ctx, stream, forward=args.stream, created=True)

    async def resume(self, ctx: Ctx, args: ResumeArguments) -> dict[str, Any] | types.CallToolResult:
        """``meerkat_resume``: run a turn on an existing session."""
        with checking_arguments():
            prompt = require_prompt({"prompt": args.prompt})
            options = turn_options(given(args, without=("session_id", "prompt", "stream")))
        with trio.CancelScope(shield=True):
            stream = await self._service.start_turn_streaming(args.session_id, prompt, **options)
            self.turns.track(_call(ctx), stream)
        return await self._follow(ctx, stream, forward=args.stream, created=False)

    async def _follow(self, ctx: Ctx, stream: TurnStream, *, forward: bool,
                      created: bool) -> dict[str, Any] | types.CallToolResult:
        """Wait for the turn, forwarding its events if asked.

        When this call is cancelled, the turn is left running: only the client's
        cancellation notification interrupts it (RunningTurns), never the call
        unwinding because its client went away; except on the 2026-07-28 HTTP wire,
        where a closed response stream is the protocol's cancellation.
        """
        try:
            if forward:
                forwarder = EventForwarder(ctx)
                async for envelope in stream:
                    if not await forwarder.send(envelope):
                        break  # the caller is gone: stop forwarding, the turn goes on
            await stream.aclose()  # events are not wanted (any more); the result still comes
            result = await stream.result()
        except trio.Cancelled:
            if cancels_by_closing(ctx):
                self.turns.interrupt_soon(stream.session_id)
            raise
        except MeerkatError as error:
            if created:  # the session exists although its first turn failed: say so, it can be resumed
                return tool_error(error, session_id=stream.session_id, session_created=True, resumable=True)
            raise
        finally:
            await stream.aclose()  # no checkpoint inside, so this runs even while the call is being cancelled
        return run_payload(result)

    # -- sessions ------------------------------------------------------------------

    async def sessions(self, ctx: Ctx, args: SessionsArguments) -> dict[str, Any]:
        """``meerkat_sessions``: list live sessions."""
        summaries = await self._service.list_sessions(limit=args.limit, offset=args.offset, labels=args.labels)
        return {"sessions": [summary.to_wire() for summary in summaries]}

    async def read(self, ctx: Ctx, args: SessionArguments) -> dict[str, Any]:
        """``meerkat_read``: one session's state."""
        return read_payload(await self._service.read_session(args.session_id))

    async def archive(self, ctx: Ctx, args: SessionArguments) -> dict[str, Any]:
        """``meerkat_archive``: hide a session for good."""
        await self._service.archive(args.session_id)
        return {"session_id": known_session_id(args.session_id), "archived": True}

    async def interrupt(self, ctx: Ctx, args: SessionArguments) -> dict[str, Any]:
        """``meerkat_interrupt``: stop the running turn."""
        return interrupt_payload(await self._service.interrupt(args.session_id))

    # -- config and catalog ------------------------------------------------------------

    async def config(self, ctx: Ctx, args: ConfigArguments) -> dict[str, Any]:
        """``meerkat_config``: get, set or patch the realm config."""
        document_field = {"get": None, "set": "config", "patch": "patch"}[args.action]
        for name in ("config", "patch"):
            if name != document_field and getattr(args, name) is not None:
                raise MalformedCall(f"`{name}` is not used with action={args.action}")
        if document_field is None:
            if args.expected_generation is not None:
                raise MalformedCall("`expected_generation` is only used with action=set or action=patch")
            return (await self._service.get_config()).to_wire()
        if getattr(args, document_field) is None:
            raise MalformedCall(f"action={args.action} requires `{document_field}`")
        with checking_arguments():
            document, expected = config_write(given(args, without=("action",)), document_field, allow_bare=False)
        view = await write_config_checked(self._service, document, patch=args.action == "patch",
                                          expected_generation=expected, surface="an MCP client")
        return view.to_wire()

    async def models_catalog(self, ctx: Ctx, args: NoArguments) -> dict[str, Any]:
        """``meerkat_models_catalog``: the models by provider."""
        return await self._service.models_catalog()

    # -- event streams ---------------------------------------------------------------

    async def stream_open(self, ctx: Ctx, args: StreamOpenArguments) -> dict[str, Any]:
        """``meerkat_event_stream_open``."""
        stream_id, session_id = await self.streams.open(args.session_id, args.after_seq, client=_client(ctx))
        return {"stream_id": stream_id, "session_id": session_id}

    async def stream_read(self, ctx: Ctx, args: StreamReadArguments) -> dict[str, Any]:
        """``meerkat_event_stream_read``: the next events, or a timeout."""
        batch = await self.streams.read(args.stream_id, timeout_s=args.timeout_ms / 1000,
                                        max_events=args.max_events)
        return {"status": batch.status, "stream_id": args.stream_id,
                "events": [event_payload(envelope) for envelope in batch.events]}

    async def stream_close(self, ctx: Ctx, args: StreamCloseArguments) -> dict[str, Any]:
        """``meerkat_event_stream_close``."""
        return {"stream_id": args.stream_id, "closed": self.streams.close(args.stream_id)}

    async def bench_noop(self, ctx: Ctx, args: NoArguments) -> dict[str, Any]:
        """The benchmark's baseline: the whole tool-call path, no work."""
        return {}
