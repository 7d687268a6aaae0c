"""The ``anthropic`` provider: Claude through ``anthropic.AsyncAnthropic`` Messages streaming.

Streams text, thinking (``thinking_budget_tokens``; its signature is kept with
the reasoning block and handed back during tool loops, as the API requires),
tool calls (``input_json_delta`` fragments assembled into one JSON object) and
usage with cache counters. The SDK's own retries are off (``max_retries=0``):
the turn loop retries, with ``retrying`` events. Imported only when a turn
first uses Anthropic.

provider_params: ``max_output_tokens`` (instead of the turn's ``max_tokens``),
``stop_sequences``, ``reasoning_effort`` (``output_config.effort``: low ... max),
``thinking_budget_tokens`` (enables extended thinking; ``max_tokens`` is raised by
the budget so thinking never starves the answer) and ``reasoning: "off"``
(thinking disabled). Current Claude models take no temperature or top_p.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, cast

import anthropic
import httpx2
from anthropic import AsyncStream

from ..usage import TurnUsage, UsageAccounting
from .base import (
    ProviderCallError,
    ProviderItem,
    ProviderRequest,
    ReasoningChunk,
    StopChunk,
    TextChunk,
    ToolCallChunk,
    UsageReport,
)
from .failures import connection_failure, redact, status_failure, stream_failure, timeout_failure
from .transport import error_text, http_client
from .wire import ImagePart, Part, ReasoningPart, TextPart, ToolResultPart, ToolUsePart, Turn, conversation
from .wire_cache import dumps, encode_history, history_marker, ordered, splice_body

__all__ = ["AnthropicProvider", "anthropic_request", "anthropic_wire_body"]

_STOP_REASONS = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
                 "stop_sequence": "stop_sequence", "pause_turn": "pause_turn", "refusal": "refusal",
                 "model_context_window_exceeded": "context_window_exceeded"}
#: Error types of a mid-stream ``error`` event, as the HTTP status they stand for.
_STREAM_ERROR_STATUS = {"overloaded_error": 529, "api_error": 500, "rate_limit_error": 429,
                        "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                        "not_found_error": 404, "request_too_large": 413}


def _part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image", "source": {"type": "base64", "media_type": part.media_type, "data": part.data}}
    if isinstance(part, ReasoningPart):
        if part.signature is None:
            return None  # another vendor's reasoning: Claude cannot verify it
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    if isinstance(part, ToolUsePart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.args}
    assert isinstance(part, ToolResultPart)
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_use_id, "content": part.text}
    if part.is_error:
        block["is_error"] = True
    return block


#: The order ``AsyncAnthropic().messages.create`` builds its body in (what reaches the wire).
_SDK_ORDER = ("max_tokens", "messages", "model", "cache_control", "output_config", "stop_sequences", "stream",
              "system", "thinking", "tools")


def _turn_message(turn: Turn) -> dict[str, Any] | None:
    content = [block for block in map(_part, turn.parts) if block is not None]
    return {"role": turn.role, "content": content} if content else None


def _encode_turn(turn: Turn) -> bytes:
    message = _turn_message(turn)
    return dumps(message) if message is not None else b""


def anthropic_request(request: ProviderRequest, *, messages: Any = None) -> dict[str, Any]:
    """The Messages API body (without ``stream``) for ``request``.

    ``messages`` replaces the converted transcript (the provider passes a
    placeholder for its cached wire form).
    """
    params = request.provider_params
    if messages is None:
        messages = [m for m in map(_turn_message, conversation(request.messages)) if m is not None]
    max_tokens = int(params.get("max_output_tokens", request.max_tokens))
    # Automatic prompt caching: later turns of a session re-read the shared prefix from the cache.
    body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens, "messages": messages,
                            "cache_control": {"type": "ephemeral"}}
    if request.system_prompt:
        body["system"] = request.system_prompt
    if request.tools:
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                         for t in request.tools]
    if "stop_sequences" in params:
        body["stop_sequences"] = params["stop_sequences"]
    if "reasoning_effort" in params:
        body["output_config"] = {"effort": params["reasoning_effort"]}
    budget = params.get("thinking_budget_tokens")
    if params.get("reasoning") == "off":
        body["thinking"] = {"type": "disabled"}
    elif budget is not None:
        # The budget counts against max_tokens: raise it so thinking never starves the answer.
        body["thinking"] = {"type": "enabled", "budget_tokens": int(budget)}
        body["max_tokens"] = max_tokens + int(budget)
    return body


async def anthropic_wire_body(request: ProviderRequest) -> bytes:
    """The streaming request's bytes, as the SDK would send them, the history from the session's wire cache."""
    history = await encode_history(request.wire_cache, "anthropic", request.messages, _encode_turn)
    body = anthropic_request(request, messages=history_marker())
    body["stream"] = True
    return splice_body(ordered(body, _SDK_ORDER), history)


def _usage(model: str, counters: dict[str, int]) -> TurnUsage:
    uncached = counters.get("input_tokens", 0)
    created = counters.get("cache_creation_input_tokens", 0)
    read = counters.get("cache_read_input_tokens", 0)
    return TurnUsage(
        input_tokens=uncached, output_tokens=counters.get("output_tokens", 0),
        cache_creation_tokens=created, cache_read_tokens=read,
        accounting=UsageAccounting(provider="anthropic", model=model, presented_tokens=uncached + created + read,
                                   convention="anthropic_disjoint_input_components",
                                   aggregation="sum_disjoint_provider_components"))


def _string(event: dict[str, Any], key: str) -> str:
    value = event[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string: {value!r}")
    return value


def _take_usage(counters: dict[str, int], usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    for key in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        value = usage.get(key)
        if isinstance(value, int):
            counters[key] = value


class AnthropicProvider:
    """See the module docstring. One instance holds one SDK client (and its connections)."""

    name = "anthropic"

    def __init__(self, settings: dict[str, Any]) -> None:
        self._key = settings["api_key"]
        self._client = anthropic.AsyncAnthropic(
            api_key=self._key, base_url=settings["base_url"], max_retries=0, open_telemetry=False,
            timeout=httpx2.Timeout(settings["read_timeout_s"], connect=settings["connect_timeout_s"]),
            http_client=http_client(settings))

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.close()

    def _failure(self, exc: Exception, model: str, streamed: bool) -> ProviderCallError:
        message = redact(error_text(exc), self._key)
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
            raw_error = body.get("error")
            error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
            if status < 400:  # an ``error`` event inside a 200 stream
                status = _STREAM_ERROR_STATUS.get(str(error.get("type")), 500)
            if isinstance(error.get("message"), str):
                message = redact(error["message"], self._key)
            return status_failure(self.name, status, message, headers=exc.response.headers, model=model)
        if isinstance(exc, (anthropic.APITimeoutError, httpx2.TimeoutException)):
            return timeout_failure(self.name, message)
        if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
            return connection_failure(self.name, message, streamed=streamed)
        return stream_failure(self.name, "stream_parse_error", message)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderItem]:
        """One Messages call, streamed (see the module docstring)."""
        content = await anthropic_wire_body(request)
        streamed = False
        try:
            # The body is already in wire form: the SDK sends it as is (pooling, auth, SSE, typed errors).
            # Each event is a plain JSON object (cast_to=object: no typed model is built).
            stream = cast("AsyncStream[dict[str, Any]]",
                          await self._client.post("/v1/messages", content=content, cast_to=object, stream=True,
                                                  stream_cls=AsyncStream[object]))
        except (anthropic.APIError, httpx2.HTTPError) as exc:
            raise self._failure(exc, request.model, False) from None
        counters: dict[str, int] = {}
        stop = "end_turn"
        tool: dict[str, Any] | None = None
        json_parts: list[str] = []
        finished = False
        async with stream:
            try:
                # Events arrive as plain JSON objects (SSE framing and error events by the SDK):
                # building its typed models costs far more per delta than reading the few fields used.
                async for event in stream:
                    kind = event["type"]
                    if kind == "content_block_delta":
                        delta = event["delta"]
                        delta_type = delta["type"]
                        if delta_type == "text_delta":
                            streamed = True
                            yield TextChunk(_string(delta, "text"))
                        elif delta_type == "input_json_delta":
                            json_parts.append(_string(delta, "partial_json"))
                        elif delta_type == "thinking_delta":
                            yield ReasoningChunk(_string(delta, "thinking"))
                        elif delta_type == "signature_delta":
                            yield ReasoningChunk("", signature=_string(delta, "signature"))
                    elif kind == "content_block_start":
                        block = event["content_block"]
                        if block["type"] == "tool_use":
                            tool, json_parts = {"id": _string(block, "id"), "name": _string(block, "name")}, []
                    elif kind == "content_block_stop":
                        if tool is not None:
                            args = json.loads("".join(json_parts) or "{}")
                            if not isinstance(args, dict):
                                raise ValueError(f"tool input is not a JSON object: {args!r}")
                            streamed = True
                            yield ToolCallChunk(tool["id"], tool["name"], args)
                            tool = None
                    elif kind == "message_start":
                        _take_usage(counters, event["message"].get("usage"))
                        if counters:  # the input side now: an interrupted call is still charged for it
                            yield UsageReport(_usage(request.model, counters))
                    elif kind == "message_delta":
                        _take_usage(counters, event.get("usage"))
                        reason = (event.get("delta") or {}).get("stop_reason")
                        if reason:
                            stop = _STOP_REASONS.get(reason, "end_turn")
                    elif kind == "message_stop":
                        finished = True
            except (anthropic.APIError, httpx2.HTTPError, ValueError, LookupError, TypeError, AttributeError) as exc:
                raise self._failure(exc, request.model, streamed) from None
        if not finished:
            raise stream_failure(self.name, "incomplete_response", "the stream ended before message_stop")
        if counters:
            yield UsageReport(_usage(request.model, counters))
        yield StopChunk(stop)  # type: ignore[arg-type]
