"""The MCP server: tool listing and dispatch on the low-level ``mcp`` 2.x ``Server``, on stdio or HTTP.

Built on ``mcp.server.lowlevel.Server`` rather than ``MCPServer``: the schemas
come from :mod:`.arguments`, results and errors are shaped in :mod:`.results`, so
nothing needs the decorator layer. Everything runs on trio: stdio through
``stdio_server`` + ``Server.run`` (:mod:`.stdio`; never ``MCPServer.run``, which
starts asyncio), HTTP through the Starlette app served by hypercorn's trio worker.

How a call can fail:

* unknown tool, or arguments that do not fit the tool's input schema: a JSON-RPC
  error (``-32601`` / ``-32602``, ``data.code`` naming the error), since the call
  itself was malformed;
* anything the host refuses while doing the work: an ``isError`` result whose
  body names the :class:`~meerkat.errors.ErrorCode` (see :mod:`.results`);
* a bug: logged to stderr with its traceback, answered as ``-32603``.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import mcp_types as types
import trio
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from meerkat.errors import ERROR_TABLE, ErrorCode, MeerkatError
from surfaces.observability import note_meta_trace_context

from .arguments import MalformedCall, parse_arguments
from .results import tool_error, tool_result
from .tools import MeerkatTools, ToolSpec
from .turns import call_key

__all__ = ["SERVER_NAME", "INSTRUCTIONS", "build_server", "serve_http"]

log = logging.getLogger("rkat.mcp")

SERVER_NAME = "rkat-mcp"
#: Told to the client at connection; many clients show it to the model.
INSTRUCTIONS = (
    "rkat-mcp hosts LLM agent sessions. Start one with meerkat_run (it returns a session_id), continue it with "
    "meerkat_resume, inspect it with meerkat_sessions/meerkat_read, stop a running turn with meerkat_interrupt. "
    "To watch a long turn, open a stream with meerkat_event_stream_open and poll meerkat_event_stream_read. "
    "Errors you can act on come back as results with isError, a `code` (SESSION_NOT_FOUND, SESSION_BUSY, "
    "CONFIG_GENERATION_CONFLICT, PROVIDER_ERROR, ...) and a `hint`."
)


def build_server(tools: MeerkatTools, *, version: str = "") -> Server[Any]:
    """A low-level MCP server exposing ``tools``."""
    specs = {spec.name: spec for spec in tools.specs()}
    listing = types.ListToolsResult(tools=[spec.listing() for spec in specs.values()])

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listing

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        note_meta_trace_context(ctx.meta)  # this task's turns get the caller's trace context
        spec = specs.get(params.name)
        if spec is None:
            raise _protocol_error(ErrorCode.METHOD_NOT_FOUND,
                                  f"Unknown tool: {params.name} (available: {', '.join(specs)})", params.name)
        return await _call(spec, ctx, params.arguments)

    async def cancelled(ctx: Any, params: types.CancelledNotificationParams) -> None:
        # The library has already cancelled the call's handler; this is what tells an
        # explicit cancellation from a disconnect, so this is where the turn is interrupted.
        if params.request_id is not None:
            await tools.turns.cancelled(call_key(ctx, params.request_id))

    server = Server(SERVER_NAME, version=version, instructions=INSTRUCTIONS, on_list_tools=list_tools,
                    on_call_tool=call_tool)
    server.add_notification_handler("notifications/cancelled", types.CancelledNotificationParams, cancelled)
    return server


async def _call(spec: ToolSpec, ctx: Any, arguments: dict[str, Any] | None) -> types.CallToolResult:
    try:
        outcome = await spec.handler(ctx, parse_arguments(spec.arguments, arguments))
    except MalformedCall as exc:
        raise _protocol_error(ErrorCode.INVALID_PARAMS, f"{spec.name}: {exc.message}", spec.name) from None
    except MeerkatError as error:
        return tool_error(error)
    except Exception as exc:
        log.exception("tool %s failed", spec.name)
        raise _protocol_error(ErrorCode.INTERNAL_ERROR, f"{spec.name} failed: internal error "
                              f"({type(exc).__name__}); see the server log", spec.name) from None
    if isinstance(outcome, types.CallToolResult):
        return outcome
    return tool_result(outcome)


def _protocol_error(code: ErrorCode, message: str, tool: str) -> MCPError:
    return MCPError(code=ERROR_TABLE[code].jsonrpc_code, message=message, data={"code": code.value, "tool": tool})


async def serve_http(server: Server[Any], host: str, port: int, *, token: str | None = None,
                     allowed_hosts: list[str] | None = None, max_sessions: int | None = None,
                     sessions_per_client: int | None = None, handshake_secs: float | None = None,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve streamable HTTP at ``http://host:port/mcp`` until cancelled; reports the bound URL when listening.

    ``token``: required as a bearer token on every request (see :mod:`.http_guard`).
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from .http_guard import (DEFAULT_HANDSHAKE_SECS, DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_SECS,
                             DEFAULT_SESSIONS_PER_CLIENT, check_bind, limit_sessions_per_client, require_bearer,
                             security_settings)

    check_bind(host, token)
    app: Any = server.streamable_http_app(streamable_http_path="/mcp", host=host,
                                          transport_security=security_settings(host, allowed_hosts or []),
                                          max_sessions=max_sessions or DEFAULT_MAX_SESSIONS,
                                          session_idle_timeout=DEFAULT_SESSION_IDLE_SECS)
    app = limit_sessions_per_client(app, server._session_manager, sessions_per_client or DEFAULT_SESSIONS_PER_CLIENT,
                                    handshake_secs=handshake_secs or DEFAULT_HANDSHAKE_SECS,
                                    idle_secs=DEFAULT_SESSION_IDLE_SECS)
    if token is not None:
        app = require_bearer(app, token)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    async with trio.open_nursery() as nursery:
        # Starlette is an ASGI app; hypercorn types its parameter more narrowly than ASGI allows.
        serving = partial(serve, app, config, shutdown_trigger=trio.sleep_forever)  # type: ignore[arg-type]
        binds = await nursery.start(serving)
        task_status.started(f"{binds[0]}/mcp")
