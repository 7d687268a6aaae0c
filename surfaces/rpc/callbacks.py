"""Callback tools: the model's call travels to the client as a ``tool/execute`` request.

``tools/register`` makes one :class:`meerkat.agent.Tool` per declared tool. Its
handler writes a server-to-client request (ids ``"srv-1"``, ``"srv-2"``... so
they never collide with the client's integer ids), waits for the answer the
reader routes back here, and turns it into the tool's output. The turn waits;
the connection keeps serving other requests meanwhile, including the nested
calls a handler may make.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Awaitable, Callable

import trio

from meerkat.agent import Tool, ToolOutput
from meerkat.agent.tools import current_tool_call, tool_error
from meerkat.errors import InvalidParams
from meerkat.providers.base import ToolSpec

from .wire import encode_request

__all__ = ["ClientCalls", "ClientCallFailed", "callback_tool", "tool_specs_from_params", "CALLBACK_TIMEOUT_SECS",
           "MAX_PENDING_CALLBACKS"]

log = logging.getLogger("rkat.rpc.callbacks")

#: How long a callback may take before the call becomes a timeout error (upstream: 120 s).
CALLBACK_TIMEOUT_SECS = 120.0
#: Callbacks waiting at once per process (upstream's bound); more wait their turn.
MAX_PENDING_CALLBACKS = 64

Send = Callable[[bytes], Awaitable[None]]


class ClientCallFailed(Exception):
    """The client could not answer (gone, or answered with an error)."""


class _Slot:
    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: Any = None
        self.error: str | None = None


class ClientCalls:
    """Requests from the server to the client, and the routing of their answers."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: dict[str, _Slot] = {}
        self._next = 0
        self._closed = False
        self._limiter = trio.CapacityLimiter(MAX_PENDING_CALLBACKS)

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Send a request and wait for its result; ClientCallFailed if the client can't answer."""
        async with self._limiter:
            if self._closed:
                raise ClientCallFailed("the client has closed its input; nobody can answer")
            self._next += 1
            request_id = f"srv-{self._next}"
            slot = self._pending[request_id] = _Slot()
            try:
                await self._send(encode_request(request_id, method, params))
                await slot.done.wait()
            finally:
                self._pending.pop(request_id, None)
        if slot.error is not None:
            raise ClientCallFailed(slot.error)
        return slot.result

    def answer(self, request_id: Any, result: Any, error: Any) -> None:
        """Route the client's response to the waiting call (unknown ids are logged and dropped)."""
        slot = self._pending.get(request_id) if isinstance(request_id, str) else None
        if slot is None:
            log.warning("dropping a response to unknown request id %r", request_id)
            return
        if error:
            message = error.get("message") if isinstance(error, dict) else None
            slot.error = f"client error: {message or error!r}"
        else:
            slot.result = result
        slot.done.set()

    def close(self) -> None:
        """The client's input ended: fail every waiting call and refuse new ones."""
        self._closed = True
        for slot in self._pending.values():
            slot.error = "the client closed its input before answering"
            slot.done.set()


def _dedupe_key(tool_use_id: str, name: str, run_id: str, round_: int, arguments: dict[str, Any]) -> dict[str, Any]:
    # The digest lets a client recognise the same call made again with the same arguments.
    canonical = json.dumps({"name": name, "arguments": arguments}, sort_keys=True, separators=(",", ":"))
    return {"run_id": run_id, "round": round_, "call_id": tool_use_id,
            "call_digest": hashlib.sha256(canonical.encode()).hexdigest()}


def _output_from(result: Any) -> ToolOutput:
    if not isinstance(result, dict):
        return tool_error("invalid_output", f"tool/execute result must be an object, got {type(result).__name__}")
    content = result.get("content")
    is_error = result.get("is_error", False)
    if isinstance(content, list) and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in content):
        return ToolOutput(content, bool(is_error))
    if isinstance(content, str):
        return ToolOutput(content, bool(is_error))
    return tool_error("invalid_output", "tool/execute result `content` must be a string or a list of content blocks")


def callback_tool(spec: ToolSpec, calls: ClientCalls) -> Tool:
    """A tool whose every call is answered by the client over ``tool/execute``."""

    async def handler(arguments: dict[str, Any]) -> ToolOutput:
        call = current_tool_call.get()
        params: dict[str, Any] = {"tool_use_id": call.id if call else "", "name": spec.name, "arguments": arguments}
        if call is not None:
            params["dedupe_key"] = _dedupe_key(call.id, spec.name, call.run_id, call.round, arguments)
        try:
            result = await calls.call("tool/execute", params)
        except ClientCallFailed as exc:
            return tool_error("execution_failed", str(exc))
        return _output_from(result)

    return Tool(spec, handler, timeout_secs=CALLBACK_TIMEOUT_SECS)


def tool_specs_from_params(params: dict[str, Any]) -> list[ToolSpec]:
    """The ``tools`` of a ``tools/register`` request, checked; errors name the entry and field."""
    tools = params.get("tools")
    if not isinstance(tools, list):
        raise InvalidParams("missing field `tools`" if tools is None else "tools must be an array")
    specs = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidParams(f"{where} must be an object")
        name = tool.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidParams(f"{where}.name must be a non-empty string")
        description = tool.get("description")
        if description is None or description == "":
            description = f"Tool: {name}"
        elif not isinstance(description, str):
            raise InvalidParams(f"{where}.description must be a string")
        schema = tool.get("input_schema")
        if schema is None:
            schema = {"type": "object"}
        elif not isinstance(schema, dict):
            raise InvalidParams(f"{where}.input_schema must be an object (a JSON Schema)")
        specs.append(ToolSpec(name=name, description=description, input_schema=schema))
    return specs
