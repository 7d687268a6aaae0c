"""The methods of ``rkat-rpc``: wire params in, a result object out.

Each method is one short function over :class:`actors.SessionService`; the shared
helpers of :mod:`surfaces.session_params` pick the fields out, so a wrong type gets
the same -32602 message naming the field on every surface. No business rules
here: the actors decide, this module only translates.

Turns stream by default: ``session/create`` and ``turn/start`` write one
``session/event`` notification per event, all before the response that ends the
turn. ``"session_events": false`` (what the published SDK sends for non-streaming
calls) turns them off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from meerkat import __version__
from meerkat.errors import ErrorCode, InvalidParams, error_from_code
from meerkat.ids import canonical_uuid
from meerkat.providers.catalog import CONTRACT_VERSION
from meerkat.views import RunResult

from surfaces.session_params import config_write, create_options, require_object, require_prompt, turn_options

from .callbacks import ClientCalls, callback_tool, tool_specs_from_params
from .methods_history import HISTORY_METHOD_NAMES, HistoryMethods
from .inflight import note_session
from .methods_live import LIVE_METHOD_NAMES, LiveMethods
from .wire import encode_event

if TYPE_CHECKING:
    from actors import SessionService, TurnStream

__all__ = ["Methods", "METHOD_NAMES", "CONTRACT_VERSION_STRING", "CAPABILITIES"]

log = logging.getLogger("rkat.rpc")

#: The published SDK accepts any 0.9.x; it switches behaviour on >= 0.9.5.
CONTRACT_VERSION_STRING = "{major}.{minor}.{patch}".format(**CONTRACT_VERSION)

#: What ``capabilities/get`` reports: what this host does, and what it does not.
#: The session and history methods are named from the method tables, so the list stays exact.
_SESSION_METHODS = ("session/create", "session/list", "session/read", "session/history", "session/archive",
                    "turn/start", "turn/interrupt",
                    *(name for name in LIVE_METHOD_NAMES if name.startswith(("session/", "turn/"))
                      and "stream_" not in name),
                    *HISTORY_METHOD_NAMES)
_STREAM_METHODS = tuple(name for name in LIVE_METHOD_NAMES if "stream_" in name or name.startswith("events/"))
CAPABILITIES: list[dict[str, Any]] = [
    {"id": "sessions", "description": "Session lifecycle, live control and history: " + ", ".join(_SESSION_METHODS),
     "status": "Available"},
    {"id": "streaming", "description": "session/event notifications during every turn; standalone subscriptions "
                                       "and the durable event log with cursors: " + ", ".join(_STREAM_METHODS),
     "status": "Available"},
    {"id": "session_store", "description": "Durable session store per realm (sqlite, jsonl or memory)",
     "status": "Available"},
    {"id": "builtins", "description": "Built-in tools (datetime)", "status": "Available"},
    *({"id": name, "description": description, "status": {"NotCompiled": {"feature": name}}}
      for name, description in [
          ("structured_output", "Structured output extraction against a JSON Schema"),
          ("hooks", "Lifecycle hooks"),
          ("shell", "Shell command execution"),
          ("comms", "Inter-agent messaging"),
          ("memory_store", "Semantic memory"),
          ("schedule", "Scheduled runs"),
          ("work_graph", "Work graph"),
          ("session_compaction", "Transcript compaction"),
          ("skills", "Skills"),
          ("mcp_live", "Live MCP servers"),
      ]),
]

#: Create params of upstream's that this host accepts but does not act on (logged once per request).
_UNSUPPORTED_CREATE = ("injected_context", "transient_turn_context", "auth_binding", "output_schema",
                       "structured_output_retries", "hooks_override", "enable_builtins", "enable_shell",
                       "enable_memory", "enable_schedule", "enable_workgraph", "enable_mob", "enable_web_search",
                       "keep_alive", "comms_name", "peer_meta", "budget_limits", "preload_skills", "skill_refs",
                       "app_context", "shell_env", "external_tools")
_UNSUPPORTED_TURN = ("injected_context", "transient_turn_context", "skill_refs", "turn_tool_overlay",
                     "keep_alive", "self_hosted_server_id", "output_schema",
                     "structured_output_retries", "auth_binding")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def _no_wait() -> None:
    """No backlog limit (a connection that writes every line at once)."""


def _session_id(params: dict[str, Any]) -> str:
    value = params.get("session_id")
    if value is None:
        raise InvalidParams("missing field `session_id`")
    if not isinstance(value, str):
        raise InvalidParams(f"session_id must be a string, got {type(value).__name__}")
    return value


def _streams(params: dict[str, Any]) -> bool:
    value = params.get("session_events", True)
    if not isinstance(value, bool):
        raise InvalidParams("session_events must be a boolean")
    return value


def _note_unsupported(method: str, params: dict[str, Any], names: tuple[str, ...]) -> None:
    ignored = [name for name in names if params.get(name) is not None]
    if ignored:
        log.info("%s: ignoring params this host does not support: %s", method, ", ".join(ignored))


def run_result_wire(result: RunResult) -> dict[str, Any]:
    """The RunResult of a create or turn; ``run_id`` added (upstream has none; clients ignore extras)."""
    body = result.to_wire()
    if result.run_id is not None:
        body["run_id"] = result.run_id
    return body


class Methods:
    """The method table of one connection."""

    def __init__(self, service: "SessionService", calls: ClientCalls, send_event: Callable[[bytes], None],
                 event_room: Callable[[], Awaitable[None]] | None = None) -> None:
        self._service = service
        self._calls = calls
        self._send_event = send_event
        #: Awaited before each event line: waits while the client is not reading (bounded backlog).
        self._event_room = event_room or _no_wait
        self.table: dict[str, Handler] = {
            "initialize": self.initialize,
            "capabilities/get": self.capabilities,
            "tools/register": self.register_tools,
            "session/create": self.create_session,
            "session/list": self.list_sessions,
            "session/read": self.read_session,
            "session/history": self.read_history,
            "session/archive": self.archive,
            "turn/start": self.start_turn,
            "turn/interrupt": self.interrupt,
            "config/get": self.get_config,
            "config/set": self.set_config,
            "config/patch": self.patch_config,
            "models/catalog": self.models_catalog,
        }
        self.live = LiveMethods(service, send_event, self._event_room)
        self.table.update(self.live.table)
        self.table.update(HistoryMethods(service).table)

    async def call(self, method: str, params: Any) -> dict[str, Any]:
        """Run ``method``; METHOD_NOT_FOUND if there is no such method."""
        handler = self.table.get(method)
        if handler is None:
            raise error_from_code(ErrorCode.METHOD_NOT_FOUND, f"Method not found: {method}")
        return await handler(require_object(params))

    # -- handshake ------------------------------------------------------------

    async def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"server_info": {"name": "rkat-rpc", "version": __version__},
                "contract_version": CONTRACT_VERSION_STRING, "methods": list(METHOD_NAMES)}

    async def capabilities(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"contract_version": dict(CONTRACT_VERSION), "capabilities": CAPABILITIES}

    async def register_tools(self, params: dict[str, Any]) -> dict[str, Any]:
        specs = tool_specs_from_params(params)
        for spec in specs:
            self._service.register_tool(callback_tool(spec, self._calls))
        return {"registered": len(specs)}

    # -- sessions and turns ----------------------------------------------------

    async def _forward(self, stream: "TurnStream") -> dict[str, Any]:
        """Write the turn's events as notifications, then return its result (all events first)."""
        session_id = stream.session_id
        async with stream:
            async for envelope in stream:
                await self._event_room()
                self._send_event(encode_event(session_id, envelope))
        return run_result_wire(await stream.result())

    async def create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        _note_unsupported("session/create", params, _UNSUPPORTED_CREATE)
        options = create_options(params)
        initial_turn = params.get("initial_turn")
        if initial_turn not in (None, "run_immediately", "deferred"):
            raise InvalidParams('initial_turn must be "run_immediately" or "deferred"')
        if initial_turn == "deferred":
            # The session is created with its settings; its first turn comes with turn/start.
            if params.get("prompt") is not None:
                require_prompt(params)
            result = await self._service.create_session(None, run_immediately=False, **options)
            body: dict[str, Any] = {"session_id": result.session_id}
            if result.session_ref:
                body["session_ref"] = result.session_ref
            return body
        prompt = require_prompt(params)
        stream = await self._service.create_session_streaming(prompt, **options)
        if note_session(stream.session_id):  # a `cancel` of this request interrupts the new session's turn
            await self._service.interrupt(stream.session_id)
        if not _streams(params):
            await stream.aclose()  # the events are not wanted: only the result
            return run_result_wire(await stream.result())
        return await self._forward(stream)

    async def start_turn(self, params: dict[str, Any]) -> dict[str, Any]:
        _note_unsupported("turn/start", params, _UNSUPPORTED_TURN)
        session_id = _session_id(params)
        prompt = require_prompt(params)
        options = turn_options(params)
        if not _streams(params):
            return run_result_wire(await self._service.start_turn(session_id, prompt, **options))
        return await self._forward(await self._service.start_turn_streaming(session_id, prompt, **options))

    async def interrupt(self, params: dict[str, Any]) -> dict[str, Any]:
        return (await self._service.interrupt(_session_id(params))).to_wire()

    async def list_sessions(self, params: dict[str, Any]) -> dict[str, Any]:
        sessions = await self._service.list_sessions(limit=params.get("limit"), offset=params.get("offset"),
                                                     labels=params.get("labels"))
        return {"sessions": [s.to_wire() for s in sessions]}

    async def read_session(self, params: dict[str, Any]) -> dict[str, Any]:
        return (await self._service.read_session(_session_id(params))).to_wire()

    async def read_history(self, params: dict[str, Any]) -> dict[str, Any]:
        offset = params.get("offset")
        session_id = _session_id(params)
        if canonical_uuid(session_id) is None:  # malformed, not unknown (as upstream parses it first)
            raise InvalidParams(f"Invalid session ID: {session_id!r} is not a UUID", details={"field": "session_id"})
        # An archived session's history stays readable (upstream keeps it; list and read leave it out).
        page = await self._service.read_history(session_id, offset=0 if offset is None else offset,
                                                limit=params.get("limit"))
        return page.to_wire()

    async def archive(self, params: dict[str, Any]) -> dict[str, Any]:
        await self._service.archive(_session_id(params))
        return {"archived": True}

    # -- config and models -------------------------------------------------------

    async def get_config(self, params: dict[str, Any]) -> dict[str, Any]:
        return (await self._service.get_config()).to_wire()

    async def set_config(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.keys() - {"expected_generation"}:  # no params is a mistake, not a request to reset
            raise InvalidParams("missing field `config` (send {\"config\": {}} to reset the config)")
        document, expected = config_write(params, "config", allow_bare=True)
        return (await self._service.set_config(document, expected_generation=expected)).to_wire()

    async def patch_config(self, params: dict[str, Any]) -> dict[str, Any]:
        document, expected = config_write(params, "patch", allow_bare=True)
        return (await self._service.patch_config(document, expected_generation=expected)).to_wire()

    async def models_catalog(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._service.models_catalog()


#: Every method, in the order ``initialize`` lists them.
METHOD_NAMES = ("initialize", "capabilities/get", "tools/register", "session/create", "session/list",
                "session/read", "session/history", "session/archive", "turn/start", "turn/interrupt",
                "config/get", "config/set", "config/patch", "models/catalog", *LIVE_METHOD_NAMES,
                *HISTORY_METHOD_NAMES)
