"""The offline ``mock`` provider: deterministic replies, no key, no network.

What it answers:

* By default it streams ``"Mock reply to: <your prompt>"`` word by word.
* ``provider_params={"reply": "..."}`` makes it stream exactly that text, and
  ``{"reply_words": N}`` streams N filler words (handy for benchmarks).
* It calls tools when the prompt says so: ``tool:NAME`` or ``tool:NAME{"json": "args"}``
  anywhere in the latest user message. Several mentions make parallel calls.
  After the results come back it answers ``"Tool NAME returned: <result>"``.
* A prompt containing ``mock:system`` gets the call's whole system prompt back,
  as ``"System: <prompt>"`` (how tests see what reached the model: injected
  context, additional instructions).

Timing (so interrupts and concurrency can be tested): ``token_delay_ms`` sleeps
before every word after the first, ``first_token_latency_ms`` before the first
one. Both come from ``provider_params`` or the ``[mock]`` config section, and
``RKAT_MOCK_TOKEN_DELAY_MS`` sets a default for the whole process.

``max_tokens`` is honoured (a word is a token): a longer reply stops with
``max_tokens``. ``{"fail": "message"}`` makes the call fail as a provider error.
Usage counts words: input is every word of the transcript (reported as the stream starts, as
Anthropic does), output the words sent.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from typing import Any, AsyncIterator

import trio

from ..ids import new_uuid7
from ..transcript import BlockAssistantMessage, Message, ToolResultsMessage, UserMessage
from ..usage import TurnUsage, UsageAccounting
from .base import (
    ProviderCallError,
    ProviderItem,
    ProviderRequest,
    StopChunk,
    TextChunk,
    ToolCallChunk,
    UsageReport,
)
from .wire_cache import THREAD_THRESHOLD_ROWS

__all__ = ["MockProvider", "MOCK_PARAMS"]

#: provider_params the mock accepts.
MOCK_PARAMS = frozenset({"reply", "reply_words", "token_delay_ms", "first_token_latency_ms", "fail"})

_TOOL_RE = re.compile(r"tool:([A-Za-z_][A-Za-z0-9_\-]*)")
#: Words the mock hands over per scheduler turn when it has no delay.
_WORDS_PER_READ = 16
_FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()


def _content_text(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))


def _words(text: str) -> int:
    # Counting separators runs at C speed; the mock re-counts the whole transcript per call.
    return text.count(" ") + 1 if text else 0


def _message_words(message: Message) -> int:
    if isinstance(message, UserMessage):
        return _words(_content_text(message.content))
    if isinstance(message, BlockAssistantMessage):
        return sum(_words(str(b.data.get("text", ""))) for b in message.blocks)
    if isinstance(message, ToolResultsMessage):
        return sum(_words(_content_text(r.content)) for r in message.results)
    return _words(getattr(message, "content", ""))


# Word counts of transcript rows, kept between calls: the mock re-counts the whole
# transcript on every call, which would otherwise grow with the session. Keyed by
# id() with the row kept alive in the value, so an id is never reused while cached.
_COUNTS: "OrderedDict[int, tuple[Message, int]]" = OrderedDict()
_COUNTS_MAX = 100_000


def _transcript_words(messages: list[Message]) -> int:
    total = 0
    for message in messages:
        hit = _COUNTS.get(id(message))
        if hit is not None and hit[0] is message:
            total += hit[1]
            continue
        count = _message_words(message)
        _COUNTS[id(message)] = (message, count)
        if len(_COUNTS) > _COUNTS_MAX:
            _COUNTS.popitem(last=False)
        total += count
    return total


async def _input_words(request: ProviderRequest) -> int:
    """The transcript's word count: from the session's running tally, counting only new rows."""
    if request.wire_cache is None:
        return _transcript_words(request.messages)
    tally = request.wire_cache.tally("mock-words")
    if tally.pending_rows(request.messages) > THREAD_THRESHOLD_ROWS:  # a cold session: off the event loop
        return await trio.to_thread.run_sync(tally.total, request.messages, _message_words)
    return tally.total(request.messages, _message_words)


def _usage(model: str, input_words: int, output_words: int) -> TurnUsage:
    return TurnUsage(input_tokens=input_words, output_tokens=output_words,
                     accounting=UsageAccounting(provider="other", model=model, presented_tokens=input_words,
                                                convention="host_declared_inclusive_input_total",
                                                aggregation="provider_inclusive_input_total"))


def _parse_tool_calls(prompt: str) -> list[tuple[str, dict[str, Any]]]:
    calls = []
    decoder = json.JSONDecoder()
    for match in _TOOL_RE.finditer(prompt):
        args: dict[str, Any] = {}
        rest = prompt[match.end():]
        if rest.startswith("{"):
            try:
                value, _ = decoder.raw_decode(rest)
                if isinstance(value, dict):
                    args = value
            except json.JSONDecodeError:
                pass
        calls.append((match.group(1), args))
    return calls


def _split_words(text: str) -> list[str]:
    """Words with their following whitespace, so the deltas join back to ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


class MockProvider:
    """See the module docstring."""

    name = "mock"

    def __init__(self, *, token_delay_ms: float = 0.0, first_token_latency_ms: float = 0.0) -> None:
        env_delay = os.environ.get("RKAT_MOCK_TOKEN_DELAY_MS", "").strip()
        self.token_delay_ms = float(env_delay) if env_delay else token_delay_ms
        self.first_token_latency_ms = first_token_latency_ms

    def _reply_for(self, request: ProviderRequest) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        params = request.provider_params
        last = request.messages[-1] if request.messages else None
        if isinstance(last, ToolResultsMessage):
            names = {}
            for message in request.messages:
                if isinstance(message, BlockAssistantMessage):
                    for b in message.blocks:
                        if b.block_type == "tool_use":
                            names[b.data["id"]] = b.data["name"]
            parts = [
                f"Tool {names.get(r.tool_use_id, r.tool_use_id)} returned: {_content_text(r.content)}"
                for r in last.results
            ]
            return " ".join(parts), []
        prompt = _content_text(last.content) if isinstance(last, UserMessage) else ""
        calls = _parse_tool_calls(prompt)
        if calls:
            return "", calls
        if "mock:system" in prompt:
            return f"System: {request.system_prompt or ''}", []
        if "reply" in params:
            return str(params["reply"]), []
        if "reply_words" in params:
            n = int(params["reply_words"])
            return " ".join(_FILLER[i % len(_FILLER)] for i in range(n)), []
        return f"Mock reply to: {prompt}", []

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderItem]:
        """Stream the deterministic reply (see the module docstring)."""
        params = request.provider_params
        if "fail" in params:
            raise ProviderCallError(f"mock provider failure: {params['fail']}",
                                    reason={"reason_type": "llm_provider_error", "provider_error_kind": "unknown",
                                            "provider_error_retryability": "non_retryable",
                                            "provider_error": {"message": str(params["fail"])}})
        delay = float(params.get("token_delay_ms", self.token_delay_ms)) / 1000.0
        latency = float(params.get("first_token_latency_ms", self.first_token_latency_ms)) / 1000.0
        text, calls = self._reply_for(request)
        input_words = await _input_words(request)
        if request.system_prompt:
            input_words += _words(request.system_prompt)
        # The input side first, as Anthropic reports it when the stream starts.
        yield UsageReport(_usage(request.model, input_words, 0))
        if latency > 0:
            await trio.sleep(latency)
        sent = 0
        stop = "end_turn"
        for index, word in enumerate(_split_words(text)):
            if sent >= request.max_tokens:
                stop = "max_tokens"
                break
            if index and delay > 0:
                await trio.sleep(delay)
            elif index % _WORDS_PER_READ == 0:
                # Let other tasks (subscribers, other sessions) run once per "network
                # read", as a real stream does: one socket read carries several tokens.
                await trio.lowlevel.checkpoint()
            yield TextChunk(word)
            sent += 1
        if stop == "end_turn" and calls:
            for name, args in calls:
                yield ToolCallChunk(id=f"toolu_{new_uuid7().replace('-', '')[-16:]}", name=name, args=args)
            stop = "tool_use"
        yield UsageReport(_usage(request.model, input_words, sent))
        yield StopChunk(stop)  # type: ignore[arg-type]
