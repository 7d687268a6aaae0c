"""What a fake provider server answers: scripted replies and faults.

A script is a list consumed one item per model call, whichever vendor format
the call uses:

* :class:`Reply`: reasoning, text, tool calls and usage, streamed in the
  vendor's wire format, token by token;
* :class:`HttpError`: an error status (401, 429 with ``retry-after``, 500...) with
  the vendor's error body;
* :class:`DropConnection`: start streaming a reply, then cut the connection
  after ``after_events`` events (a failure mid-stream);
* :class:`Stall`: send ``after_events`` events, then go silent for ``seconds``
  (a read timeout when the client's is shorter).

Usage numbers are vendor-neutral: ``input_tokens`` is the whole prompt
(``presented_tokens``), of which ``cache_read_tokens``/``cache_creation_tokens``
came from the prompt cache; each vendor encoder splits them its own way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = ["ToolCall", "Reply", "HttpError", "DropConnection", "Stall", "ScriptItem", "tokens", "script_from_json"]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model makes; ``id`` is generated when not given."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One streamed model answer."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 10
    #: Defaults to one per streamed token (text and reasoning) plus 5 per tool call.
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    #: ``end_turn`` (``tool_use`` when there are tool calls) or ``max_tokens``.
    stop: str | None = None

    @property
    def stop_reason(self) -> str:
        """The stop this reply ends with."""
        return self.stop or ("tool_use" if self.tool_calls else "end_turn")

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning tokens (one per streamed reasoning token)."""
        return len(tokens(self.reasoning))

    @property
    def total_output_tokens(self) -> int:
        """Output tokens reported (reasoning included)."""
        if self.output_tokens is not None:
            return self.output_tokens
        return len(tokens(self.text)) + self.reasoning_tokens + 5 * len(self.tool_calls)


@dataclass(frozen=True)
class HttpError:
    """Answer with an error status and the vendor's error body."""

    status: int
    message: str = "scripted failure"
    #: Seconds for the ``retry-after`` header (None: no header).
    retry_after: float | None = None


@dataclass(frozen=True)
class DropConnection:
    """Stream ``reply`` but cut the connection after ``after_events`` events."""

    reply: Reply = Reply(text="this answer is cut off halfway through")
    after_events: int = 3


@dataclass(frozen=True)
class Stall:
    """Send ``after_events`` events of ``reply``, then stay silent for ``seconds`` before going on."""

    seconds: float
    reply: Reply = Reply(text="late")
    after_events: int = 0


ScriptItem = Union[Reply, HttpError, DropConnection, Stall]

_TOKEN_RE = re.compile(r"\S+\s*|\s+")


def tokens(text: str) -> list[str]:
    """``text`` split into word tokens that join back to it (one stream delta each)."""
    return _TOKEN_RE.findall(text)


def _reply(data: dict[str, Any]) -> Reply:
    calls = tuple(ToolCall(str(c["name"]), dict(c.get("args") or {}), c.get("id")) for c in data.get("tool_calls", ()))
    fields = {k: data[k] for k in ("text", "reasoning", "input_tokens", "output_tokens", "cache_read_tokens",
                                   "cache_creation_tokens", "stop") if k in data}
    return Reply(tool_calls=calls, **fields)


def script_from_json(items: list[dict[str, Any]]) -> list[ScriptItem]:
    """A script from JSON: ``{"text": ...}`` replies, or ``{"fault": "http"|"drop"|"stall", ...}``."""
    script: list[ScriptItem] = []
    for item in items:
        fault = item.get("fault")
        if fault is None:
            script.append(_reply(item))
        elif fault == "http":
            script.append(HttpError(int(item["status"]), str(item.get("message", "scripted failure")),
                                    item.get("retry_after")))
        elif fault == "drop":
            script.append(DropConnection(_reply(item.get("reply", {"text": "cut off"})), int(item.get("after_events", 3))))
        elif fault == "stall":
            script.append(Stall(float(item["seconds"]), _reply(item.get("reply", {"text": "late"})),
                                int(item.get("after_events", 0))))
        else:
            raise ValueError(f"unknown fault {fault!r}: expected http, drop or stall")
    return script
