"""The turn loop: model call, tools, results back to the model, until a final answer.

One *run* (a user input processed to completion) is one call of
:func:`run_loop`. Each model call inside it is a *turn* in upstream's event
vocabulary (``turn_started`` ... ``turn_completed``). The loop mutates a
:class:`RunState` as it goes, so the caller always knows what was produced, even
when the run is cancelled halfway: that is how an interrupt keeps the partial
answer. It emits events through a plain callback and never touches storage.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Callable

import trio

from ..errors import AgentError, MeerkatError, ProviderError
from ..events import (
    AgentEvent,
    BudgetWarning,
    ErrorReport,
    ReasoningComplete,
    ReasoningDelta,
    Retrying,
    TextComplete,
    TextDelta,
    ToolCallRequested,
    ToolExecutionCompleted,
    ToolExecutionStarted,
    ToolResultReceived,
    TurnCompleted,
    TurnStarted,
    TurnUsageAccountingUnmeasured,
    UnmeasuredUsage,
)
from ..ids import new_uuid7
from ..providers.base import (
    Provider,
    ProviderCallError,
    ProviderRequest,
    ReasoningChunk,
    StopChunk,
    TextChunk,
    ToolCallChunk,
    UsageReport,
)
from ..providers.retry import RetryPolicy
from ..transcript import (
    AssistantBlock,
    BlockAssistantMessage,
    Message,
    ToolResult,
    ToolResultsMessage,
    now_rfc3339,
    reasoning_block,
    text_block,
    tool_use_block,
)
from ..usage import TurnUsage, Usage
from .tools import ToolCall, ToolOutput, ToolRegistry

__all__ = ["RunSettings", "RunState", "RunFailure", "run_loop"]

Emit = Callable[[AgentEvent], object]


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Everything fixed for the duration of one run."""

    model: str
    provider: str
    system_prompt: str | None = None
    max_tokens: int = 16384
    provider_params: dict[str, Any] = field(default_factory=dict)
    max_turns: int = 100
    budget_max_tokens: int | None = None
    tool_timeout_secs: float = 600.0
    max_concurrent_tools: int = 10
    retry: RetryPolicy = RetryPolicy()
    #: ``limits.max_turn_duration``: the longest the whole run may take (every model call,
    #: retry and tool call of it).
    max_turn_duration_s: float | None = None


@dataclass
class RunState:
    """What a run has produced so far; readable at any moment, also after a cancel."""

    session_id: str
    run_id: str
    history: list[Message]
    new_rows: list[Message]
    usage: Usage
    last_assistant_text: str | None = None
    turns: int = 0
    tool_calls: int = 0
    final_text: str = ""
    terminal_cause_kind: str | None = None
    #: Text of the model call in flight (not yet a transcript row).
    partial_text: list[str] = field(default_factory=list)
    partial_reasoning: list[str] = field(default_factory=list)
    partial_message_id: str | None = None
    #: The vendor's signature of the in-flight reasoning, stored with its block.
    partial_signature: str | None = None
    #: Reasoning items of the in-flight call to hand back (OpenAI), stored with its block.
    partial_response_items: list[dict[str, Any]] = field(default_factory=list)
    #: The in-flight call's usage as last reported (None: nothing reported yet).
    partial_usage: TurnUsage | None = None
    #: The session's wire cache (:class:`meerkat.providers.wire_cache.WireCache`), passed to each call.
    wire_cache: Any = None
    #: System context added after the system prompt on every model call: injected
    #: context rows and this turn's additional instructions. A row injected while
    #: the run goes on is appended here and reaches the next call.
    context: list[str] = field(default_factory=list)

    def system_prompt(self, base: str | None) -> str | None:
        """The system prompt of the next model call: ``base`` then the context, blank-line separated."""
        if not self.context:
            return base
        return "\n\n".join([base, *self.context] if base else self.context)

    def start_partial(self) -> None:
        """Forget the in-flight answer: a new model call starts, or its row was pushed."""
        self.partial_text.clear()
        self.partial_reasoning.clear()
        self.partial_signature = None
        self.partial_response_items = []
        self.partial_usage = None

    def reasoning_block(self, text: str) -> AssistantBlock | None:
        """The in-flight call's reasoning as a block (None when there is none)."""
        if not text and not self.partial_response_items:
            return None
        return _reasoning_block(text, self.partial_signature, self.partial_response_items)

    def partial_row(self, stop_reason: str = "cancelled") -> BlockAssistantMessage | None:
        """The in-flight answer as an assistant row, or None when nothing was said yet."""
        text = "".join(self.partial_text)
        reasoning = self.reasoning_block("".join(self.partial_reasoning))
        if not text and reasoning is None:
            return None
        blocks: list[AssistantBlock] = []
        if reasoning is not None:
            blocks.append(reasoning)
        if text:
            blocks.append(text_block(text))
        return BlockAssistantMessage(
            blocks=blocks,
            stop_reason=stop_reason,  # type: ignore[arg-type]
            created_at=now_rfc3339(),
            assistant_message_id=self.partial_message_id,
            run_id=self.run_id,
        )


class RunFailure(Exception):
    """The run cannot finish; carries the ``run_failed`` report and the caller's error."""

    def __init__(self, report: ErrorReport, error: MeerkatError, terminal_cause_kind: str | None = None) -> None:
        super().__init__(report.message)
        self.report = report
        self.error = error
        self.terminal_cause_kind = terminal_cause_kind


def _reasoning_block(text: str, signature: str | None, response_items: list[dict[str, Any]]) -> AssistantBlock:
    data = dict(reasoning_block(text).data)
    if signature:
        data["signature"] = signature
    if response_items:
        data["response_items"] = list(response_items)
    return AssistantBlock("reasoning", data)


def _tool_use_block(call: ToolCallChunk) -> AssistantBlock:
    block = tool_use_block(call.id, call.name, call.args)
    return AssistantBlock("tool_use", {**block.data, "signature": call.signature}) if call.signature else block


@dataclass(slots=True)
class _Response:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallChunk] = field(default_factory=list)
    usage: TurnUsage | None = None
    stop_reason: str = "end_turn"


async def _stream_once(state: RunState, provider: Provider, request: ProviderRequest, emit: Emit,
                       response: _Response) -> None:
    message_id = state.partial_message_id
    # aclosing: a cancelled or failed turn closes the provider's HTTP stream at once.
    async with aclosing(provider.stream(request)) as items:  # type: ignore[type-var]
        async for item in items:
            if isinstance(item, TextChunk):
                state.partial_text.append(item.text)
                emit(TextDelta(delta=item.text, assistant_message_id=message_id))
            elif isinstance(item, ReasoningChunk):
                if item.text:
                    state.partial_reasoning.append(item.text)
                    emit(ReasoningDelta(delta=item.text, assistant_message_id=message_id))
                if item.signature:
                    state.partial_signature = item.signature
                if item.response_item is not None:
                    state.partial_response_items.append(item.response_item)
            elif isinstance(item, ToolCallChunk):
                response.tool_calls.append(item)
            elif isinstance(item, UsageReport):
                response.usage = state.partial_usage = item.usage
            elif isinstance(item, StopChunk):
                response.stop_reason = item.stop_reason


async def _call_model(state: RunState, settings: RunSettings, provider: Provider, request: ProviderRequest,
                      emit: Emit) -> _Response:
    """One model call, retried with backoff while the failure is retryable and nothing was streamed yet."""
    return await _call_model_attempts(state, settings, provider, request, emit)


async def _call_model_attempts(state: RunState, settings: RunSettings, provider: Provider,
                               request: ProviderRequest, emit: Emit) -> _Response:
    attempt = 0
    while True:
        response = _Response()
        try:
            await _stream_once(state, provider, request, emit, response)
            break
        except ProviderCallError as exc:
            # Retried while no text or tool call reached the client: reasoning alone is
            # a prefix the retry replaces (the client saw ``retrying``), as upstream does.
            streamed = bool(state.partial_text or response.tool_calls)
            attempt += 1
            schedule = None if streamed else settings.retry.schedule(attempt, exc)
            if schedule is None:
                raise RunFailure(
                    ErrorReport(error_class=exc.error_class, message=exc.message, reason=exc.reason),
                    ProviderError(exc.message, details={"reason": exc.reason} if exc.reason else None),
                    "llm_failure",
                ) from exc
            emit(Retrying(retry=schedule, assistant_message_id=state.partial_message_id))
            state.start_partial()
            await trio.sleep(schedule.plan.selected_delay_ms / 1000)
        except MeerkatError as exc:
            raise RunFailure(ErrorReport(error_class="llm", message=exc.message), exc, "llm_failure") from exc
    response.text = "".join(state.partial_text)
    response.reasoning = "".join(state.partial_reasoning)
    return response


async def _run_tools(
    calls: list[ToolCallChunk], tools: ToolRegistry, settings: RunSettings, state: RunState
) -> list[tuple[ToolOutput, int]]:
    results: list[tuple[ToolOutput, int] | None] = [None] * len(calls)
    limiter = trio.CapacityLimiter(max(1, settings.max_concurrent_tools))

    async def one(index: int, call: ToolCallChunk) -> None:
        async with limiter:
            results[index] = await tools.execute(call.name, call.args, settings.tool_timeout_secs,
                                                 ToolCall(call.id, call.name, state.run_id, state.turns))

    async with trio.open_nursery() as nursery:
        for index, call in enumerate(calls):
            nursery.start_soon(one, index, call)
    return [r for r in results if r is not None]


def _budget_reached(state: RunState, settings: RunSettings) -> bool:
    limit = settings.budget_max_tokens
    return limit is not None and state.usage.total_tokens >= limit


def _warn_budget(state: RunState, settings: RunSettings, emit: Emit) -> None:
    assert settings.budget_max_tokens is not None
    used = state.usage.total_tokens
    emit(BudgetWarning(budget_type="tokens", used=used, limit=settings.budget_max_tokens,
                       percent=round(used / settings.budget_max_tokens, 4)))
    state.terminal_cause_kind = "budget_exhausted"


async def run_loop(
    state: RunState, settings: RunSettings, provider: Provider, tools: ToolRegistry, emit: Emit
) -> None:
    """Drive one run to its end, filling ``state``; raise :class:`RunFailure` on failure.

    ``settings.max_turn_duration_s`` bounds the whole run: a model that keeps calling
    tools cannot outlast it any more than one slow call can.
    """
    limit = settings.max_turn_duration_s
    with trio.move_on_after(limit if limit is not None else float("inf")) as deadline:
        await _run_calls(state, settings, provider, tools, emit)
        return
    assert deadline.cancelled_caught and limit is not None
    message = (f"{settings.provider} ({settings.model}) did not finish the turn within {limit:g} s "
               f"(limits.max_turn_duration); {state.turns} model call(s) and {state.tool_calls} tool call(s) "
               f"had finished")
    reason = {"reason_type": "llm_network_timeout", "duration_ms": int(limit * 1000)}
    raise RunFailure(ErrorReport(error_class="llm", message=message, reason=reason),
                     ProviderError(message, details={"reason": reason}), "llm_failure")


async def _run_calls(
    state: RunState, settings: RunSettings, provider: Provider, tools: ToolRegistry, emit: Emit
) -> None:
    while True:
        if state.turns >= settings.max_turns:
            message = f"turn limit reached ({settings.max_turns} model calls)"
            raise RunFailure(ErrorReport(error_class="max_turns", message=message), AgentError(message),
                             "turn_limit_reached")
        if _budget_reached(state, settings):
            _warn_budget(state, settings, emit)
            state.final_text = state.last_assistant_text or ""
            return
        state.partial_message_id = new_uuid7()
        state.start_partial()
        emit(TurnStarted(turn_number=state.turns, assistant_message_id=state.partial_message_id))
        request = ProviderRequest(
            model=settings.model,
            messages=state.history + state.new_rows,
            system_prompt=state.system_prompt(settings.system_prompt),
            tools=tools.specs(),
            max_tokens=settings.max_tokens,
            provider_params=settings.provider_params,
            wire_cache=state.wire_cache,
        )
        response = await _call_model(state, settings, provider, request, emit)
        message_id = state.partial_message_id
        state.partial_usage = None  # counted below: no longer in flight
        if response.usage is not None:
            state.usage = state.usage.add(response.usage)
        else:
            emit(TurnUsageAccountingUnmeasured(
                session_id=state.session_id, unmeasured=UnmeasuredUsage(settings.provider, settings.model)))
        if response.reasoning:
            emit(ReasoningComplete(content=response.reasoning, assistant_message_id=message_id))
        if response.text:
            emit(TextComplete(content=response.text, assistant_message_id=message_id))
        budget_hit = _budget_reached(state, settings)
        calls = response.tool_calls if response.stop_reason == "tool_use" and not budget_hit else []
        blocks: list[AssistantBlock] = []
        reasoning = state.reasoning_block(response.reasoning)
        if reasoning is not None:
            blocks.append(reasoning)
        if response.text:
            blocks.append(text_block(response.text))
        if calls:
            await _dispatch_tools(state, settings, tools, calls, blocks, response, emit)
            continue
        stop = "end_turn" if response.stop_reason == "tool_use" else response.stop_reason
        state.new_rows.append(BlockAssistantMessage(
            blocks=blocks, stop_reason=stop, created_at=now_rfc3339(),  # type: ignore[arg-type]
            assistant_message_id=message_id, run_id=state.run_id))
        state.start_partial()
        emit(TurnCompleted(stop_reason=stop, usage=response.usage, assistant_message_id=message_id))  # type: ignore[arg-type]
        state.turns += 1
        state.final_text = response.text
        if response.text:
            state.last_assistant_text = response.text
        if budget_hit:
            _warn_budget(state, settings, emit)
        return


async def _dispatch_tools(
    state: RunState,
    settings: RunSettings,
    tools: ToolRegistry,
    calls: list[ToolCallChunk],
    blocks: list[AssistantBlock],
    response: _Response,
    emit: Emit,
) -> None:
    message_id = state.partial_message_id
    for call in calls:
        emit(ToolCallRequested(id=call.id, name=call.name, args=call.args))
    unknown = [c.name for c in calls if tools.get(c.name) is None]
    if unknown:
        message = f"model called unknown tool: {', '.join(unknown)}"
        raise RunFailure(ErrorReport(error_class="tool", message=message), AgentError(message), "tool_failure")
    for call in calls:
        emit(ToolExecutionStarted(id=call.id, name=call.name))
    outputs = await _run_tools(calls, tools, settings, state)
    results: list[ToolResult] = []
    for call, (output, duration_ms) in zip(calls, outputs):
        emit(ToolExecutionCompleted(id=call.id, name=call.name, is_error=output.is_error, duration_ms=duration_ms))
        emit(ToolResultReceived(id=call.id, name=call.name, content=output.blocks(), is_error=output.is_error))
        results.append(ToolResult(tool_use_id=call.id, content=output.content, is_error=output.is_error))
    state.tool_calls += len(calls)
    blocks.extend(_tool_use_block(c) for c in calls)
    state.new_rows.append(BlockAssistantMessage(
        blocks=blocks, stop_reason="tool_use", created_at=now_rfc3339(),
        assistant_message_id=message_id, run_id=state.run_id))
    state.new_rows.append(ToolResultsMessage(results=results, created_at=now_rfc3339(), run_id=state.run_id))
    state.start_partial()
    if response.text:
        state.last_assistant_text = response.text
    emit(TurnCompleted(stop_reason="tool_use", usage=response.usage, assistant_message_id=message_id))
    state.turns += 1
