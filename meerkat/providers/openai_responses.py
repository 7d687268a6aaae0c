"""The ``openai`` provider: OpenAI models through ``openai.AsyncOpenAI`` and the Responses API.

Streams ``response.output_text.delta`` as text, reasoning summaries and
reasoning text as reasoning, completed ``function_call`` items as tool calls,
and the usage of ``response.completed`` (cached and reasoning tokens included).
Requests are sent with ``store: false``: the session's transcript is the
conversation, nothing is kept at OpenAI. Self-hosted servers configured with
``api_style = "responses"`` use this provider too.

provider_params: ``reasoning_effort`` (``none`` ... ``xhigh``), ``reasoning_summary``
(``auto``/``concise``/``detailed``; streams a summary of the reasoning),
``verbosity``, ``max_output_tokens``, ``reasoning: "off"`` (effort ``none``), and
``temperature``/``top_p`` for models that accept them.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, cast

import httpx2
import openai
from openai import AsyncStream

from ..usage import TurnUsage, UsageAccounting
from .base import (
    ProviderItem,
    ProviderRequest,
    ReasoningChunk,
    StopChunk,
    TextChunk,
    ToolCallChunk,
    UsageReport,
)
from .catalog import find_model
from .failures import stream_failure
from .openai_common import classify, error_event_failure, make_client, usage_counter
from .wire import ImagePart, ReasoningPart, TextPart, ToolResultPart, ToolUsePart, Turn, args_json, conversation
from .wire_cache import encode_history, history_marker, items_json, ordered, splice_body

__all__ = ["OpenAIResponsesProvider", "responses_request", "responses_wire_body", "hands_back_reasoning"]

_INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "content_filter"}
_REASONING_EVENTS = ("response.reasoning_summary_text.delta", "response.reasoning_text.delta")


#: The order ``AsyncOpenAI().responses.create`` builds its body in (what reaches the wire).
_SDK_ORDER = ("model", "stream", "include", "input", "instructions", "max_output_tokens", "reasoning", "store",
              "temperature", "text", "tools", "top_p")


def _turn_items(turn: Turn, with_reasoning: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for part in turn.parts:
        if isinstance(part, TextPart):
            if turn.role == "user":
                content.append({"type": "input_text", "text": part.text})
            else:
                items.append({"role": "assistant", "content": part.text})
        elif isinstance(part, ImagePart):
            content.append({"type": "input_image", "image_url": f"data:{part.media_type};base64,{part.data}"})
        elif isinstance(part, ReasoningPart):
            if with_reasoning:
                items.extend(part.items)
        elif isinstance(part, ToolUsePart):
            items.append({"type": "function_call", "call_id": part.id, "name": part.name,
                          "arguments": args_json(part.args)})
        elif isinstance(part, ToolResultPart):
            items.append({"type": "function_call_output", "call_id": part.tool_use_id, "output": part.text})
    if content:
        items.append({"role": "user", "content": content})
    return items


def _encode_turn(turn: Turn) -> bytes:
    return items_json(_turn_items(turn, False))


def _encode_turn_with_reasoning(turn: Turn) -> bytes:
    return items_json(_turn_items(turn, True))


def hands_back_reasoning(provider: str, model: str) -> bool:
    """Whether calls to ``model`` ask for encrypted reasoning and hand it back (OpenAI reasoning models).

    With ``store: false`` nothing is kept at OpenAI, so a reasoning model only
    keeps its chain of thought across a tool loop when its reasoning items come
    back in the next call's input; models without reasoning refuse the ``include``.
    """
    if provider != "openai":
        return False
    entry = find_model(model)
    return entry.supports_reasoning if entry is not None else model.startswith(("gpt-5", "o1", "o3", "o4"))


def responses_request(request: ProviderRequest, model: str | None = None, *, input_items: Any = None,
                      with_reasoning: bool = False) -> dict[str, Any]:
    """The Responses API body (without ``stream``) for ``request``; ``model`` overrides the model name.

    ``input_items`` replaces the converted transcript (the provider passes a
    placeholder for its cached wire form); ``with_reasoning`` asks for encrypted
    reasoning and hands back the reasoning items of earlier calls.
    """
    params = request.provider_params
    if input_items is None:
        input_items = [item for turn in conversation(request.messages) for item in _turn_items(turn, with_reasoning)]
    body: dict[str, Any] = {"model": model or request.model, "input": input_items, "store": False,
                            "max_output_tokens": int(params.get("max_output_tokens", request.max_tokens))}
    if with_reasoning:
        body["include"] = ["reasoning.encrypted_content"]
    if request.system_prompt:
        body["instructions"] = request.system_prompt
    if request.tools:
        body["tools"] = [{"type": "function", "name": t.name, "description": t.description,
                          "parameters": t.input_schema, "strict": False} for t in request.tools]
    reasoning: dict[str, Any] = {}
    if "reasoning_effort" in params:
        reasoning["effort"] = params["reasoning_effort"]
    elif params.get("reasoning") == "off":
        reasoning["effort"] = "none"
    if "reasoning_summary" in params and params.get("reasoning") != "off":
        reasoning["summary"] = params["reasoning_summary"]
    if reasoning:
        body["reasoning"] = reasoning
    if "verbosity" in params:
        body["text"] = {"verbosity": params["verbosity"]}
    for key in ("temperature", "top_p"):
        if key in params:
            body[key] = params[key]
    return body


async def responses_wire_body(request: ProviderRequest, model: str, with_reasoning: bool) -> bytes:
    """The streaming request's bytes, as the SDK would send them, the history from the session's wire cache."""
    encoder = _encode_turn_with_reasoning if with_reasoning else _encode_turn
    history = await encode_history(request.wire_cache, "responses+reasoning" if with_reasoning else "responses",
                                   request.messages, encoder)
    body = responses_request(request, model, input_items=history_marker(), with_reasoning=with_reasoning)
    body["stream"] = True
    return splice_body(ordered(body, _SDK_ORDER), history)


def _string(event: dict[str, Any], key: str) -> str:
    value = event[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string: {value!r}")
    return value


def _reasoning_item(item: dict[str, Any]) -> dict[str, Any] | None:
    """A reasoning output item as the next call's input wants it back (None without encrypted content)."""
    encrypted = item.get("encrypted_content")
    if not isinstance(encrypted, str):
        return None
    summary = [{"type": "summary_text", "text": _string(s, "text")} for s in (item.get("summary") or ())]
    return {"type": "reasoning", "id": _string(item, "id"), "summary": summary, "encrypted_content": encrypted}


def _usage(model: str, usage: Any, accounting_provider: str) -> TurnUsage:
    input_tokens = usage_counter(usage, "input_tokens")
    cached = usage_counter(usage, "input_tokens_details", "cached_tokens")
    reasoning = usage_counter(usage, "output_tokens_details", "reasoning_tokens")
    return TurnUsage(
        input_tokens=input_tokens, output_tokens=usage_counter(usage, "output_tokens"),
        cache_read_tokens=cached, reasoning_tokens=reasoning,
        accounting=UsageAccounting(provider=accounting_provider, model=model, presented_tokens=input_tokens,
                                   convention="open_ai_input_includes_cached_subset",
                                   aggregation="provider_inclusive_input_total"))


class OpenAIResponsesProvider:
    """See the module docstring. One instance holds one SDK client (and its connections)."""

    name = "openai"

    def __init__(self, settings: dict[str, Any]) -> None:
        self._key: str | None = settings.get("api_key")
        self.name = settings.get("provider_name", "openai")
        #: Self-hosted aliases map to the server's own model names.
        self._remote_models: dict[str, str] = settings.get("remote_models") or {}
        self._client = make_client(settings, settings["base_url"], self._key)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.close()

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderItem]:
        """One Responses call, streamed (see the module docstring)."""
        with_reasoning = hands_back_reasoning(self.name, request.model)
        content = await responses_wire_body(request, self._remote_models.get(request.model, request.model),
                                            with_reasoning)
        show_reasoning = request.provider_params.get("reasoning") != "off"
        streamed = False
        try:
            # The body is already in wire form: the SDK sends it as is (pooling, auth, SSE, typed errors).
            # Each event is a plain JSON object (cast_to=object: no typed model is built).
            stream = cast("AsyncStream[dict[str, Any]]",
                          await self._client.post("/responses", content=content, cast_to=object, stream=True,
                                                  stream_cls=AsyncStream[object],
                                                  options={"security": {"bearer_auth": True}}))
        except (openai.APIError, httpx2.HTTPError) as exc:
            raise classify(self.name, exc, key=self._key, model=request.model, streamed=False) from None
        stop = None
        calls = 0
        usage = None
        async with stream:
            try:
                # Events arrive as plain JSON objects (SSE framing and error events by the SDK):
                # building its typed models costs far more per delta than reading the few fields used.
                async for event in stream:
                    kind = event["type"]
                    if kind == "response.output_text.delta":
                        streamed = True
                        yield TextChunk(_string(event, "delta"))
                    elif kind in _REASONING_EVENTS:
                        if show_reasoning:
                            yield ReasoningChunk(_string(event, "delta"))
                    elif kind == "response.output_item.done":
                        item = event["item"]
                        if item["type"] == "reasoning" and with_reasoning:
                            handed_back = _reasoning_item(item)
                            if handed_back is not None:
                                yield ReasoningChunk("", response_item=handed_back)
                        elif item["type"] == "function_call":
                            args = json.loads(item.get("arguments") or "{}")
                            if not isinstance(args, dict):
                                raise ValueError(f"tool arguments are not a JSON object: {args!r}")
                            streamed = True
                            calls += 1
                            yield ToolCallChunk(_string(item, "call_id"), _string(item, "name"), args)
                    elif kind in ("response.completed", "response.incomplete"):
                        response = event["response"]
                        usage = response.get("usage")
                        details = response.get("incomplete_details") or {}
                        stop = (_INCOMPLETE.get(str(details.get("reason")), "end_turn")
                                if kind == "response.incomplete" else "end_turn")
                    elif kind == "response.failed":
                        error = event["response"].get("error") or {}
                        raise error_event_failure(self.name, error.get("code"), error.get("message"), key=self._key)
                    elif kind == "error":
                        raise error_event_failure(self.name, event.get("code"), event.get("message"), key=self._key)
            except (openai.APIError, httpx2.HTTPError, ValueError, LookupError, TypeError, AttributeError) as exc:
                raise classify(self.name, exc, key=self._key, model=request.model, streamed=streamed) from None
        if stop is None:
            raise stream_failure(self.name, "incomplete_response", "the stream ended before response.completed")
        if usage is not None:
            yield UsageReport(_usage(request.model, usage, "open_ai" if self.name == "openai" else self.name))
        yield StopChunk("tool_use" if calls and stop == "end_turn" else stop)  # type: ignore[arg-type]
