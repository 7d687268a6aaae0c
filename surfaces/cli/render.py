"""Showing a turn in the terminal: stream views, tool lines and the run summary.

Assistant text goes to stdout; everything else ("chrome": thinking, tool calls,
retries, notes) goes to stderr, so ``rkat run -s "..." > answer.txt`` keeps
only the answer. ANSI styling is used only when stderr is a terminal.

Stream views (``--stream-view/-w``), over the scope each event comes from:

* ``primary`` (default): only the primary agent's events;
* ``mux``: every scope, each line prefixed with ``[<scope>] ``;
* ``focus`` with ``--stream-focus SCOPE``: only that scope. If it never shows
  up, the run still completes and is saved, then the command fails naming the
  scopes that were seen.

This host runs one agent per session, so every event's scope is ``primary``;
``mob:<member>`` scopes are accepted by the grammar for compatibility.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from meerkat.errors import InvalidParams

from .handles import short_handle
from .terminal_text import visible

if TYPE_CHECKING:
    from meerkat.events import EventEnvelope
    from meerkat.views import RunResult

__all__ = ["StreamView", "StreamRenderer", "run_summary", "VIEWS", "PRIMARY_SCOPE"]

VIEWS = ("primary", "mux", "focus")
PRIMARY_SCOPE = "primary"
_ATOM = r"[^/\s]+"
_SCOPE_RE = re.compile(rf"primary(/sub:{_ATOM})?|mob:{_ATOM}(/sub:{_ATOM})?")
_ARGS_PREVIEW = 200
_RESULT_LINES = 8
_RESULT_LINE_CHARS = 240


@dataclass(frozen=True)
class StreamView:
    """Which scopes to render, and how."""

    mode: str = "primary"
    focus: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in VIEWS:
            raise InvalidParams(f"unknown stream view {self.mode!r}: expected one of {', '.join(VIEWS)}")
        if self.mode == "focus" and self.focus is None:
            raise InvalidParams("--stream-view focus needs --stream-focus SCOPE (e.g. --stream-focus primary)")
        if self.focus is not None:
            if self.mode != "focus":
                raise InvalidParams("--stream-focus only applies to --stream-view focus")
            if not _SCOPE_RE.fullmatch(self.focus):
                raise InvalidParams(f"invalid stream scope {self.focus!r}: expected primary, primary/sub:<id>, "
                                    "mob:<member> or mob:<member>/sub:<id>")

    def shows(self, scope: str) -> bool:
        """Whether events of ``scope`` are rendered in this view."""
        if self.mode == "primary":
            return scope == PRIMARY_SCOPE
        if self.mode == "focus":
            return scope == self.focus
        return True


class _Lines:
    """A text stream that knows whether it is at the start of a line, and can prefix lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.at_line_start = True

    def write(self, text: str, prefix: str = "") -> None:
        if not text:
            return
        if prefix:
            head = prefix if self.at_line_start else ""
            text = head + text.replace("\n", "\n" + prefix)
            if text.endswith("\n" + prefix):
                text = text[: -len(prefix)]
        self.stream.write(text)
        self.stream.flush()
        self.at_line_start = text.endswith("\n")

    def end_line(self, prefix: str = "") -> None:
        if not self.at_line_start:
            self.write("\n", prefix)


@dataclass
class StreamRenderer:
    """Renders a turn's events as they arrive (see the module docstring)."""

    view: StreamView
    out: TextIO
    err: TextIO
    color: bool = False
    scopes_seen: list[str] = field(default_factory=list)
    printed_text: bool = False

    def __post_init__(self) -> None:
        self._out = _Lines(self.out)
        self._err = _Lines(self.err)
        self._block_ended = False
        self._thinking = False

    def handle(self, envelope: "EventEnvelope") -> None:
        """Render one event, if its scope is shown in this view."""
        scope = PRIMARY_SCOPE
        if scope not in self.scopes_seen:
            self.scopes_seen.append(scope)
        if not self.view.shows(scope):
            return
        prefix = f"[{scope}] " if self.view.mode == "mux" else ""
        payload: Any = envelope.payload
        kind = envelope.type
        if kind == "text_delta":
            self._text(visible(payload.delta), prefix)
        elif kind == "text_complete":
            self._block_ended = True
        elif kind == "reasoning_delta":
            if not self._thinking:
                self._err.end_line(prefix)
                self._err.write(self._dim("thinking") + "\n", prefix)
                self._thinking = True
            self._err.write(self._dim(visible(payload.delta)), prefix)
        elif kind == "reasoning_complete":
            self._thinking = False
            self._err.end_line(prefix)
        elif kind == "turn_started" and payload.turn_number > 0:
            self._chrome(f"━━━ Turn {payload.turn_number + 1} ━━━", prefix)
        else:
            line = self._chrome_line(kind, payload)
            if line:
                self._chrome(line, prefix)

    def _text(self, delta: str, prefix: str) -> None:
        if self._block_ended and self.printed_text:
            self._out.write("\n", prefix)
        self._block_ended = False
        self._out.write(delta, prefix)
        self.printed_text = True

    def _chrome_line(self, kind: str, payload: Any) -> str | None:
        if kind == "tool_call_requested":
            args = json.dumps(payload.args, ensure_ascii=False)
            if len(args) > _ARGS_PREVIEW:
                args = args[:_ARGS_PREVIEW] + "…"
            return f"tool {visible(payload.name)}({visible(args)})"
        if kind == "tool_execution_started":
            return self._dim(f"▸ running {visible(payload.name)}...")
        if kind == "tool_execution_completed":
            mark = "✗" if payload.is_error else "✓"
            return f"{mark} {visible(payload.name)} ({payload.duration_ms}ms)"
        if kind == "tool_result_received":
            preview = visible(_result_preview(payload.content))
            return self._dim(preview) if preview else None
        if kind == "retrying":
            failure, plan = payload.retry.failure, payload.retry.plan
            return (f"retrying after {failure.kind} ({visible(failure.message)}): attempt {plan.attempt}/{plan.max_retries} "
                    f"in {plan.selected_delay_ms / 1000:.1f}s")
        if kind == "budget_warning":
            return f"budget: {payload.budget_type} used {payload.used} of {payload.limit}"
        if kind == "stream_truncated":
            return ("(the display fell behind and skipped some events; the full answer is saved in the session)")
        return None

    def _chrome(self, line: str, prefix: str) -> None:
        self._err.end_line(prefix)
        self._err.write(line + "\n", prefix)

    def _dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self.color and text else text

    def finish(self) -> None:
        """End the streamed text with a newline (the answer is not printed twice)."""
        if self.printed_text:
            self._out.end_line()
        self._err.end_line()

    def check_focus(self, session_id: str) -> None:
        """After the run: fail if ``--stream-focus`` named a scope that never appeared."""
        if self.view.mode == "focus" and self.view.focus not in self.scopes_seen:
            seen = ", ".join(self.scopes_seen) or "none"
            raise InvalidParams(
                f"stream focus '{self.view.focus}' did not match any emitted scope (discovered scopes: {seen}). "
                f"The answer is saved: rkat session show {session_id}",
                details={"session_id": session_id, "scopes": list(self.scopes_seen)})


def _result_preview(content: list[dict[str, Any]]) -> str:
    text = "\n".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    lines = [line[:_RESULT_LINE_CHARS] for line in text.splitlines()[:_RESULT_LINES]]
    return "\n".join("  " + line for line in lines)


def run_summary(result: "RunResult", *, resumed: bool) -> str:
    """The line printed on stderr after a text-mode run, the same for a new and a resumed session.

    The session's short handle (what ``--resume`` takes), the model that answered,
    the number of model calls (one per tool round trip) and this run's tokens. A
    cut-off answer (stop reason ``max_tokens``) gets a second line saying so.
    """
    usage = result.run_usage
    calls = f"{result.turns} model call" + ("" if result.turns == 1 else "s")
    model = f" | {result.model}" if result.model else ""
    line = (f"[Session: {short_handle(result.session_id)}{model} | {calls} | "
            f"Tokens: {usage.input_tokens} in / {usage.output_tokens} out]")
    if result.stop_reason == "max_tokens":
        line += ("\nWarning: the answer was cut off at the token limit (raise --max-tokens or "
                 "agent.max_tokens_per_turn; continue with: rkat c \"go on\")")
    return line
