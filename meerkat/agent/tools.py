"""Tools the model may call: a registry of specs and async handlers, plus built-ins.

A handler takes the call's arguments (a JSON object) and returns a
:class:`ToolOutput`. Failures never escape: an exception, a timeout or bad
arguments become an ``is_error`` result whose text is the JSON
``{"error": code, "message": ...}`` that upstream feeds back to the model, so the
run goes on.
"""

from __future__ import annotations

import json
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable

import trio

from ..providers.base import ToolSpec

__all__ = ["ToolOutput", "ToolHandler", "Tool", "ToolCall", "current_tool_call", "ToolRegistry", "datetime_tool",
           "builtin_tools", "tool_error"]


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """A tool's result: text or content blocks, and whether it is an error."""

    content: str | list[dict[str, Any]]
    is_error: bool = False

    def blocks(self) -> list[dict[str, Any]]:
        """The content as a block list (what ``tool_result_received`` carries)."""
        if isinstance(self.content, str):
            return [{"type": "text", "text": self.content}]
        return list(self.content)


ToolHandler = Callable[[dict[str, Any]], Awaitable[ToolOutput]]


@dataclass(frozen=True, slots=True)
class Tool:
    """A spec the model sees and the handler that runs it."""

    spec: ToolSpec
    handler: ToolHandler
    timeout_secs: float | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """Which call a handler is serving: the model's call id, the run and the model call (round) it came from.

    Handlers that forward a call elsewhere (the callback tools of ``rkat-rpc``) read it
    from :data:`current_tool_call` to tell the far side which call this is.
    """

    id: str
    name: str
    run_id: str
    round: int


#: The call being executed in this task (None outside a tool handler).
current_tool_call: ContextVar[ToolCall | None] = ContextVar("current_tool_call", default=None)


def tool_error(code: str, message: str) -> ToolOutput:
    """The upstream-shaped error result fed back to the model."""
    return ToolOutput(json.dumps({"error": code, "message": message}), is_error=True)


@dataclass
class ToolRegistry:
    """Tools by name. Lookups are by exact name; the model sees :meth:`specs`."""

    tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, tool: Tool) -> None:
        """Add or replace a tool."""
        self.tools[tool.spec.name] = tool

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, if any."""
        return self.tools.get(name)

    def specs(self) -> list[ToolSpec]:
        """What the model sees, sorted by name for stable requests."""
        return [self.tools[n].spec for n in sorted(self.tools)]

    async def execute(self, name: str, args: dict[str, Any], default_timeout: float,
                      call: ToolCall | None = None) -> tuple[ToolOutput, int]:
        """Run one call; returns the output and its duration in ms. Never raises (but Cancelled).

        ``call`` is made visible to the handler as :data:`current_tool_call`.
        """
        started = time.perf_counter()
        if call is not None:
            current_tool_call.set(call)  # each call runs in its own task, so this cannot leak
        tool = self.tools.get(name)
        if tool is None:
            output = tool_error("tool_not_found", f"Unknown tool: {name}")
        else:
            timeout = tool.timeout_secs or default_timeout
            output = tool_error("timeout", f"Tool '{name}' timed out after {int(timeout * 1000)}ms")
            with trio.move_on_after(timeout):
                try:
                    output = await tool.handler(args)
                except Exception as exc:  # a tool bug must not fail the run
                    output = tool_error("execution_failed", f"Tool error: {exc}")
        return output, int((time.perf_counter() - started) * 1000)


async def _datetime_handler(args: dict[str, Any]) -> ToolOutput:
    now = datetime.now().astimezone()
    body = {
        "iso8601": now.isoformat(timespec="seconds"),
        "date": now.date().isoformat(),
        "time": now.time().isoformat(timespec="seconds"),
        "timezone": now.tzname() or "",
        "unix_timestamp": int(now.timestamp()),
        "year": now.year,
        "month": now.month,
        "day": now.day,
        "weekday": now.strftime("%A"),
    }
    return ToolOutput(json.dumps(body))


#: The built-in ``datetime`` tool: the current local date and time.
datetime_tool = Tool(
    ToolSpec(
        name="datetime",
        description="Get the current date and time (local timezone). Takes no arguments.",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    ),
    _datetime_handler,
)


def builtin_tools() -> ToolRegistry:
    """A registry holding the built-in tools."""
    registry = ToolRegistry()
    registry.register(datetime_tool)
    return registry
