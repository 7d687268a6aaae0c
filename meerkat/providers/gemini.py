"""The ``gemini`` provider: Gemini's REST streaming API over httpx2 (no Google SDK).

``POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`` with the key
in ``x-goog-api-key`` (never in the URL, so it cannot reach a log line). Parts
marked ``thought`` stream as reasoning (``includeThoughts``), ``functionCall``
parts become tool calls, their ``thoughtSignature`` is kept with the call and
echoed back as Gemini requires, and the last ``usageMetadata`` is the usage.

provider_params: ``temperature``, ``top_p``, ``top_k``, ``max_output_tokens``,
``stop_sequences``, ``thinking_budget_tokens`` (``thinkingBudget``; -1 dynamic,
0 off on models that allow it), ``thinking_level`` and ``reasoning: "off"``
(thoughts are not requested).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator
from urllib.parse import quote

import httpx2

from ..ids import new_uuid7
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
from .transport import http_client
from .wire import ImagePart, Part, TextPart, ToolResultPart, ToolUsePart, Turn, conversation
from .wire_cache import dumps, encode_history, history_marker, splice_body

__all__ = ["GeminiProvider", "gemini_request", "gemini_wire_body"]

_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
#: In-stream error statuses, as the HTTP status they stand for.
_STATUS_CODES = {"RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503, "INTERNAL": 500, "INVALID_ARGUMENT": 400,
                 "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "DEADLINE_EXCEEDED": 504}


def _part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ImagePart):
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    if isinstance(part, ToolUsePart):
        wire: dict[str, Any] = {"functionCall": {"id": part.id, "name": part.name, "args": part.args}}
        if part.signature:
            wire["thoughtSignature"] = part.signature
        return wire
    if isinstance(part, ToolResultPart):
        key = "error" if part.is_error else "result"
        return {"functionResponse": {"id": part.tool_use_id, "name": part.name, "response": {key: part.text}}}
    return None  # Anthropic-style signed reasoning has no Gemini form


def _turn_content(turn: Turn) -> dict[str, Any] | None:
    parts = [wire for wire in map(_part, turn.parts) if wire is not None]
    return {"role": "user" if turn.role == "user" else "model", "parts": parts} if parts else None


def _encode_turn(turn: Turn) -> bytes:
    content = _turn_content(turn)
    return dumps(content) if content is not None else b""


def gemini_request(request: ProviderRequest, *, contents: Any = None) -> dict[str, Any]:
    """The ``streamGenerateContent`` body for ``request``.

    ``contents`` replaces the converted transcript (the provider passes a
    placeholder for its cached wire form).
    """
    params = request.provider_params
    if contents is None:
        contents = [c for c in map(_turn_content, conversation(request.messages)) if c is not None]
    generation: dict[str, Any] = {"maxOutputTokens": int(params.get("max_output_tokens", request.max_tokens))}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"),
                         ("stop_sequences", "stopSequences")):
        if ours in params:
            generation[theirs] = params[ours]
    thinking: dict[str, Any] = {"includeThoughts": params.get("reasoning") != "off"}
    if "thinking_budget_tokens" in params:
        thinking["thinkingBudget"] = params["thinking_budget_tokens"]
    if "thinking_level" in params:
        thinking["thinkingLevel"] = params["thinking_level"]
    generation["thinkingConfig"] = thinking
    body: dict[str, Any] = {"contents": contents, "generationConfig": generation}
    if request.system_prompt:
        body["systemInstruction"] = {"parts": [{"text": request.system_prompt}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [
            {"name": t.name, "description": t.description, "parametersJsonSchema": t.input_schema}
            for t in request.tools]}]
    return body


async def gemini_wire_body(request: ProviderRequest) -> bytes:
    """The request's bytes as httpx2's ``json=`` would encode them, the history from the session's wire cache."""
    history = await encode_history(request.wire_cache, "gemini", request.messages, _encode_turn)
    return splice_body(gemini_request(request, contents=history_marker()), history)


def _usage(model: str, meta: dict[str, Any]) -> TurnUsage:
    prompt = int(meta.get("promptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return TurnUsage(
        input_tokens=prompt, output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cache_read_tokens=int(meta.get("cachedContentTokenCount") or 0), reasoning_tokens=thoughts,
        accounting=UsageAccounting(provider="gemini", model=model, presented_tokens=prompt,
                                   convention="gemini_prompt_includes_cached_subset",
                                   aggregation="provider_inclusive_input_total"))


def _error_message(raw: bytes) -> tuple[str, str]:
    """(message, status name) of a Google error body, tolerating non-JSON bodies."""
    try:
        error = json.loads(raw).get("error") or {}
        return str(error.get("message") or raw[:200].decode(errors="replace")), str(error.get("status") or "")
    except (ValueError, AttributeError):
        return raw[:200].decode(errors="replace") or "no body", ""


class GeminiProvider:
    """See the module docstring. One instance holds one httpx2 client (and its connections)."""

    name = "gemini"

    def __init__(self, settings: dict[str, Any]) -> None:
        self._key = settings["api_key"]
        self._client = http_client(settings, base_url=settings["base_url"], headers={"x-goog-api-key": self._key})

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()

    def _failure(self, exc: Exception, streamed: bool) -> ProviderCallError:
        message = redact(str(exc) or type(exc).__name__, self._key)
        if isinstance(exc, httpx2.TimeoutException):
            return timeout_failure(self.name, message)
        if isinstance(exc, httpx2.TransportError):
            return connection_failure(self.name, message, streamed=streamed)
        return stream_failure(self.name, "stream_parse_error", message)

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderItem]:
        """One ``streamGenerateContent`` call, streamed (see the module docstring)."""
        # The model id is a client's string: escaped, so it stays one path segment (a "/" or "..") and a control
        # character is not an invalid URL (that was a 500 before the request left).
        url = f"/v1beta/models/{quote(request.model, safe='')}:streamGenerateContent"
        show_reasoning = request.provider_params.get("reasoning") != "off"
        streamed = False
        finish: str | None = None
        meta: dict[str, Any] | None = None
        calls = 0
        try:
            content = await gemini_wire_body(request)
            async with self._client.stream("POST", url, params={"alt": "sse"}, content=content,
                                           headers={"content-type": "application/json"}) as reply:
                if reply.status_code >= 400:
                    message, _ = _error_message(await reply.aread())
                    raise status_failure(self.name, reply.status_code, redact(message, self._key),
                                         headers=reply.headers, model=request.model)
                async for line in reply.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    chunk = json.loads(line[5:])
                    if "error" in chunk:
                        message, status = _error_message(line[5:].encode())
                        raise status_failure(self.name, _STATUS_CODES.get(status, 500), redact(message, self._key))
                    meta = chunk.get("usageMetadata") or meta
                    for candidate in chunk.get("candidates") or ():
                        for part in (candidate.get("content") or {}).get("parts") or ():
                            call = part.get("functionCall")
                            if call is not None:
                                args = call.get("args") or {}
                                if not isinstance(args, dict):
                                    raise ValueError(f"functionCall args are not an object: {args!r}")
                                streamed = True
                                calls += 1
                                yield ToolCallChunk(str(call.get("id") or f"call_{new_uuid7()}"), str(call["name"]),
                                                    args, signature=part.get("thoughtSignature"))
                            elif part.get("text"):
                                if part.get("thought"):
                                    if show_reasoning:
                                        yield ReasoningChunk(part["text"])
                                else:
                                    streamed = True
                                    yield TextChunk(part["text"])
                        finish = candidate.get("finishReason") or finish
        except ProviderCallError:
            raise
        except (httpx2.HTTPError, ValueError, KeyError) as exc:
            raise self._failure(exc, streamed) from None
        if finish is None:
            raise stream_failure(self.name, "incomplete_response", "the stream ended without a finishReason")
        if meta is not None:
            yield UsageReport(_usage(request.model, meta))
        if finish == "MAX_TOKENS":
            stop = "max_tokens"
        elif finish in _FILTERED:
            stop = "content_filter"
        else:
            stop = "tool_use" if calls else "end_turn"
        yield StopChunk(stop)  # type: ignore[arg-type]
