"""Callback tools: functions in this program that the model can call.

Declare one with ``@client.tool(...)``. When the model calls it, ``rkat-rpc``
sends a ``tool/execute`` request; the handler runs in its own task (it may make
SDK calls of its own) and its return value goes back as the tool's result:

* a string, or a list of content blocks, as is;
* anything else JSON-encoded (``None`` is an empty string);
* an exception as ``"Tool error: ..."`` with ``is_error`` set.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["ToolCallDedupeKey", "CallbackTool", "CallbackTools"]

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ToolCallDedupeKey:
    """Identifies one call: the run, the model call (``round``) in it, the call id and a digest
    of name and arguments. A tool with effects that must not repeat can deduplicate on it."""

    run_id: str
    round: int
    call_id: str
    call_digest: str

    @classmethod
    def from_wire(cls, value: Any) -> "ToolCallDedupeKey | None":
        """The key, or None when absent or malformed."""
        if not isinstance(value, dict):
            return None
        run_id, round_, call_id, digest = (value.get(k) for k in ("run_id", "round", "call_id", "call_digest"))
        if (isinstance(run_id, str) and isinstance(call_id, str) and isinstance(digest, str)
                and isinstance(round_, int) and not isinstance(round_, bool) and round_ >= 0):
            return cls(run_id, round_, call_id, digest)
        return None


@dataclass(frozen=True, slots=True)
class CallbackTool:
    """A declared tool: what the model sees, and the function that answers."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler

    def to_wire(self) -> dict[str, Any]:
        """The ``tools/register`` entry."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}

    @property
    def wants_dedupe_key(self) -> bool:
        """True when the handler declares a ``dedupe_key`` parameter."""
        try:
            return "dedupe_key" in inspect.signature(self.handler).parameters
        except (TypeError, ValueError):
            return False


def _content(value: Any) -> str | list[Any]:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


class CallbackTools:
    """The tools one client has declared, by name."""

    def __init__(self) -> None:
        self._tools: dict[str, CallbackTool] = {}

    def declare(self, name: str, description: str, input_schema: dict[str, Any] | None,
                handler: Handler) -> CallbackTool:
        """Add (or replace) a tool; defaults as the published SDK's: ``Tool: <name>``, ``{"type": "object"}``."""
        if not isinstance(name, str) or not name:
            raise ValueError("a tool needs a non-empty name")
        tool = CallbackTool(name, description or f"Tool: {name}", input_schema or {"type": "object"}, handler)
        self._tools[name] = tool
        return tool

    def __bool__(self) -> bool:
        return bool(self._tools)

    def to_wire(self) -> list[dict[str, Any]]:
        """Every tool, as ``tools/register`` takes them."""
        return [tool.to_wire() for tool in self._tools.values()]

    async def execute(self, params: Any) -> dict[str, Any]:
        """Answer one ``tool/execute`` request; never raises."""
        params = params if isinstance(params, dict) else {}
        name = params.get("name") or ""
        tool = self._tools.get(name)
        if tool is None:
            return {"content": f"Unknown tool: {name}", "is_error": True}
        arguments = params.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        try:
            if tool.wants_dedupe_key:
                value = tool.handler(arguments, dedupe_key=ToolCallDedupeKey.from_wire(params.get("dedupe_key")))
            else:
                value = tool.handler(arguments)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            return {"content": f"Tool error: {exc}", "is_error": True}
        return {"content": _content(value), "is_error": False}
