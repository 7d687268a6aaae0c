"""The tracing observer: OpenTelemetry spans with the GenAI semantic conventions.

One turn gives a span tree::

    invoke_agent rkat                 (the run; gen_ai.conversation.id = session id)
      chat <model>                    (each model call, retried attempts included)
      execute_tool <tool>             (each tool call)
      chat <model>

The run span's parent is the trace context of the request that started the
turn (a REST ``traceparent`` header, ``_meta`` on RPC/MCP) when there was one.
Imported only when tracing is enabled (:mod:`.tracing`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import Observer, TurnInfo, TurnProbe

__all__ = ["TracingObserver"]

_PROPAGATOR = TraceContextTextMapPropagator()
_FINISH_REASONS = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
#: Our provider names as the semantic conventions' well-known ``gen_ai.provider.name`` values.
_PROVIDER_NAMES = {"gemini": "gcp.gemini"}


class TracingObserver(Observer):
    """Spans for runs, model calls and tool calls, from ``tracer``."""

    def __init__(self, tracer: trace.Tracer, *, capture_content: bool = False) -> None:
        self.tracer = tracer
        self.capture_content = capture_content

    def turn(self, info: TurnInfo) -> TurnProbe:
        return _TurnSpans(self, info)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, default=str)


class _TurnSpans(TurnProbe):
    """The spans of one turn, opened and closed as its events go by."""

    def __init__(self, observer: TracingObserver, info: TurnInfo) -> None:
        self._tracer = observer.tracer
        self._capture = observer.capture_content
        self._info = info
        parent = _PROPAGATOR.extract(dict(info.trace_context)) if info.trace_context else None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "rkat",
            "gen_ai.provider.name": _PROVIDER_NAMES.get(info.provider, info.provider),
            "rkat.provider": info.provider,
            "gen_ai.request.model": info.model,
            "gen_ai.conversation.id": info.session_id,
            "rkat.run.id": info.run_id,
            "rkat.realm.id": info.realm_id,
        }
        if self._capture and info.prompt is not None:
            attributes["gen_ai.input.messages"] = json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": _text(info.prompt)}]}], ensure_ascii=False)
        self._run = self._tracer.start_span("invoke_agent rkat", context=parent, kind=SpanKind.INTERNAL,
                                            attributes=attributes)
        self._run_context = trace.set_span_in_context(self._run)
        self._provider_name = _PROVIDER_NAMES.get(info.provider, info.provider)
        self._chat: Any = None
        self._chat_ended_at: int | None = None
        self._chat_text: list[str] = []
        self._tools: dict[str, Any] = {}
        self._tool_args: dict[str, Any] = {}

    # -- model calls --

    def _start_chat(self) -> None:
        info = self._info
        self._chat = self._tracer.start_span(f"chat {info.model}", context=self._run_context, kind=SpanKind.CLIENT,
                                             attributes={"gen_ai.operation.name": "chat",
                                                         "gen_ai.provider.name": self._provider_name,
                                                         "gen_ai.request.model": info.model,
                                                         "gen_ai.conversation.id": info.session_id})
        self._chat_ended_at = None
        self._chat_text = []

    def _end_chat(self, *, usage: Any = None, stop_reason: str | None = None, error: str | None = None,
                  message: str | None = None) -> None:
        chat = self._chat
        if chat is None:
            return
        self._chat = None
        if usage is not None:
            chat.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            chat.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            if usage.cache_read_tokens:
                chat.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens)
        if stop_reason is not None:
            chat.set_attribute("gen_ai.response.finish_reasons", [_FINISH_REASONS.get(stop_reason, stop_reason)])
        if self._capture and self._chat_text:
            chat.set_attribute("gen_ai.output.messages", json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "".join(self._chat_text)}]}],
                ensure_ascii=False))
        if error is not None:
            chat.set_attribute("error.type", error)
            chat.set_status(Status(StatusCode.ERROR, message))
        chat.end(end_time=self._chat_ended_at)

    def event(self, payload: Any) -> None:
        kind = type(payload).__name__
        if kind == "TextDelta":
            if self._capture:
                self._chat_text.append(payload.delta)
        elif kind == "TurnStarted":
            self._start_chat()
        elif kind == "Retrying":
            failure = payload.retry.failure
            self._end_chat(error=failure.kind, message=failure.message)
            self._start_chat()
        elif kind == "ToolCallRequested":
            # The model call ended when it asked for tools; its usage comes with turn_completed later.
            if self._chat is not None and self._chat_ended_at is None:
                self._chat_ended_at = time.time_ns()
            self._tool_args[payload.id] = payload.args
        elif kind == "ToolExecutionStarted":
            attributes: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": payload.name,
                                          "gen_ai.tool.call.id": payload.id, "gen_ai.tool.type": "function",
                                          "gen_ai.conversation.id": self._info.session_id}
            if self._capture and payload.id in self._tool_args:
                attributes["gen_ai.tool.call.arguments"] = _text(self._tool_args[payload.id])
            self._tools[payload.id] = self._tracer.start_span(f"execute_tool {payload.name}",
                                                              context=self._run_context, attributes=attributes)
        elif kind == "ToolExecutionCompleted":
            span = self._tools.pop(payload.id, None)
            if span is not None:
                if payload.is_error:
                    span.set_attribute("error.type", "tool_error")
                    span.set_status(Status(StatusCode.ERROR))
                span.end()
        elif kind == "ToolResultReceived":
            pass
        elif kind == "TurnCompleted":
            self._end_chat(usage=payload.usage, stop_reason=payload.stop_reason)

    def finish(self, status: str, usage: Any, report: Any, cause: str | None) -> None:
        error_type = None
        message = None
        if report is not None:
            reason = report.reason or {}
            error_type = str(reason.get("provider_error_kind") or reason.get("reason_type") or report.error_class)
            message = report.message
        for span in self._tools.values():  # interrupted or failed mid-tool
            span.set_attribute("error.type", error_type or "cancelled")
            span.end()
        self._tools.clear()
        self._end_chat(error=error_type, message=message)
        run = self._run
        run.set_attribute("rkat.run.status", status)
        if usage is not None:
            run.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            run.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if status == "failed":
            run.set_attribute("error.type", error_type or "internal")
            run.set_status(Status(StatusCode.ERROR, message))
        elif status == "interrupted":
            run.set_attribute("error.type", "cancelled")
        run.end()
