"""The ``self_hosted`` provider: any OpenAI-compatible server (Ollama, vLLM, llama.cpp...).

Configured in the realm config::

    [self_hosted.servers.ollama]
    base_url = "http://127.0.0.1:11434"   # "/v1" is added unless the URL ends with it
    api_style = "chat_completions"         # or "responses"

    [self_hosted.models.gemma]
    server = "ollama"
    remote_model = "gemma3:27b"            # the server's name for it (default: the alias)

Sessions use the alias (``--model gemma``, provider inferred). Chat-completions
servers are streamed through ``openai.AsyncOpenAI().chat.completions`` with
``stream_options.include_usage``; ``reasoning_content``/``reasoning`` deltas (vLLM,
llama.cpp, Ollama) become reasoning. ``RKAT_SELF_HOSTED_API_KEY`` is sent as the
bearer token when set.

provider_params: ``temperature``, ``top_p``, ``top_k``, ``seed``, ``max_output_tokens``,
``stop_sequences``, ``reasoning_effort``, ``reasoning: "off"`` and ``extra_body``
(an object merged into the request, for server-specific options).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, cast

import httpx2
import openai
from openai import AsyncStream

from ..errors import ProviderError
from ..usage import TurnUsage, UsageAccounting
from .base import ProviderItem, ProviderRequest, ReasoningChunk, StopChunk, TextChunk, ToolCallChunk, UsageReport
from .failures import stream_failure
from .openai_common import classify, make_client, usage_counter
from .openai_responses import OpenAIResponsesProvider
from .wire import ImagePart, TextPart, ToolResultPart, ToolUsePart, Turn, args_json, conversation
from .wire_cache import encode_history, history_marker, items_json, ordered, splice_body

__all__ = ["ChatCompletionsProvider", "SelfHostedProvider", "build_self_hosted", "chat_request", "chat_wire_body",
           "server_url"]

_SERVER_KEYS = {"transport", "base_url", "api_style"}
_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
           "content_filter": "content_filter"}


def server_url(base_url: str) -> str:
    """The OpenAI-compatible API root of a server (``.../v1``)."""
    base = base_url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


#: The order ``AsyncOpenAI().chat.completions.create`` builds its body in (``extra_body`` keys follow).
_SDK_ORDER = ("model", "stream", "messages", "max_tokens", "reasoning_effort", "seed", "stop", "stream_options",
              "temperature", "tools", "top_p")


def _turn_messages(turn: Turn) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if turn.role == "assistant":
        text = "".join(p.text for p in turn.parts if isinstance(p, TextPart))
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        calls = [{"id": p.id, "type": "function", "function": {"name": p.name, "arguments": args_json(p.args)}}
                 for p in turn.parts if isinstance(p, ToolUsePart)]
        if calls:
            message["tool_calls"] = calls
        return [message]
    content: list[dict[str, Any]] = []
    for part in turn.parts:
        if isinstance(part, ToolResultPart):
            messages.append({"role": "tool", "tool_call_id": part.tool_use_id, "content": part.text})
        elif isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            content.append({"type": "image_url", "image_url": {"url": f"data:{part.media_type};base64,{part.data}"}})
    if content:
        plain = all(c["type"] == "text" for c in content)
        messages.append({"role": "user", "content": "\n\n".join(c["text"] for c in content) if plain else content})
    return messages


def _encode_turn(turn: Turn) -> bytes:
    return items_json(_turn_messages(turn))


def _system(request: ProviderRequest) -> list[dict[str, Any]]:
    return [{"role": "system", "content": request.system_prompt}] if request.system_prompt else []


def chat_request(request: ProviderRequest, model: str, *, messages: Any = None) -> dict[str, Any]:
    """The chat-completions body (without ``stream``) for ``request``, calling the server's ``model``.

    ``messages`` replaces the converted system prompt and transcript (the
    provider passes a placeholder for its cached wire form).
    """
    params = request.provider_params
    if messages is None:
        messages = _system(request) + [m for turn in conversation(request.messages) for m in _turn_messages(turn)]
    body: dict[str, Any] = {"model": model, "messages": messages, "stream_options": {"include_usage": True},
                            "max_tokens": int(params.get("max_output_tokens", request.max_tokens))}
    if request.tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                           "parameters": t.input_schema}} for t in request.tools]
    for key in ("temperature", "top_p", "seed", "reasoning_effort"):
        if key in params:
            body[key] = params[key]
    if "stop_sequences" in params:
        body["stop"] = params["stop_sequences"]
    extra = dict(params.get("extra_body") or {})
    if "top_k" in params:
        extra["top_k"] = params["top_k"]
    if extra:
        body["extra_body"] = extra
    return body


async def chat_wire_body(request: ProviderRequest, model: str) -> bytes:
    """The streaming request's bytes, as the SDK would send them, the history from the session's wire cache."""
    history = await encode_history(request.wire_cache, "chat", request.messages, _encode_turn)
    system = items_json(_system(request))
    if system:
        history = [system, *history]
    body = chat_request(request, model, messages=history_marker())
    body["stream"] = True
    extra = body.pop("extra_body", None) or {}
    return splice_body({**ordered(body, _SDK_ORDER), **extra}, history)


def _usage(model: str, usage: Any) -> TurnUsage:
    prompt = usage_counter(usage, "prompt_tokens")
    return TurnUsage(
        input_tokens=prompt, output_tokens=usage_counter(usage, "completion_tokens"),
        cache_read_tokens=usage_counter(usage, "prompt_tokens_details", "cached_tokens") or None,
        reasoning_tokens=usage_counter(usage, "completion_tokens_details", "reasoning_tokens") or None,
        accounting=UsageAccounting(provider="self_hosted", model=model, presented_tokens=prompt,
                                   convention="open_ai_compatible_prompt_includes_cache_details",
                                   aggregation="provider_inclusive_input_total"))


class ChatCompletionsProvider:
    """Chat completions, streamed, against one OpenAI-compatible server."""

    name = "self_hosted"

    def __init__(self, settings: dict[str, Any]) -> None:
        self._key: str | None = settings.get("api_key")
        self._remote_models: dict[str, str] = settings.get("remote_models") or {}
        self._client = make_client(settings, settings["base_url"], self._key)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.close()

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderItem]:
        """One chat-completions call, streamed."""
        content = await chat_wire_body(request, self._remote_models.get(request.model, request.model))
        show_reasoning = request.provider_params.get("reasoning") != "off"
        streamed = False
        try:
            # The body is already in wire form: the SDK sends it as is (pooling, auth, SSE, typed errors).
            # Each chunk is a plain JSON object (cast_to=object: no typed model is built).
            stream = cast("AsyncStream[dict[str, Any]]",
                          await self._client.post("/chat/completions", content=content, cast_to=object,
                                                  stream=True, stream_cls=AsyncStream[object],
                                                  options={"security": {"bearer_auth": True}}))
        except (openai.APIError, httpx2.HTTPError) as exc:
            raise classify(self.name, exc, key=self._key, model=request.model, streamed=False) from None
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage = None
        async with stream:
            try:
                # Chunks arrive as plain JSON objects (SSE framing and error objects by the SDK):
                # building its typed models costs far more per delta than reading the few fields used.
                async for chunk in stream:
                    if chunk.get("usage") is not None:
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            streamed = True
                            yield TextChunk(str(text))
                        thinking = delta.get("reasoning_content") or delta.get("reasoning")
                        if isinstance(thinking, str) and thinking and show_reasoning:
                            yield ReasoningChunk(thinking)
                        for call in delta.get("tool_calls") or ():
                            slot = calls.setdefault(int(call.get("index") or 0), {"id": "", "name": "", "args": []})
                            slot["id"] = call.get("id") or slot["id"]
                            function = call.get("function")
                            if function is not None:
                                slot["name"] = function.get("name") or slot["name"]
                                slot["args"].append(function.get("arguments") or "")
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
            except (openai.APIError, httpx2.HTTPError, ValueError, LookupError, TypeError, AttributeError) as exc:
                raise classify(self.name, exc, key=self._key, model=request.model, streamed=streamed) from None
        if finish is None:
            raise stream_failure(self.name, "incomplete_response", "the stream ended without a finish_reason")
        for index in sorted(calls):
            slot = calls[index]
            try:
                args = json.loads("".join(slot["args"]) or "{}")
            except ValueError as exc:
                raise stream_failure(self.name, "stream_parse_error", f"bad tool arguments: {exc}") from None
            if not isinstance(args, dict):
                raise stream_failure(self.name, "stream_parse_error", f"tool arguments are not an object: {args!r}")
            yield ToolCallChunk(slot["id"] or f"call_{index}", slot["name"], args)
        if usage is not None:
            yield UsageReport(_usage(request.model, usage))
        yield StopChunk(_FINISH.get(finish, "end_turn"))  # type: ignore[arg-type]


class SelfHostedProvider:
    """Routes each self-hosted alias to the client of its server."""

    name = "self_hosted"

    def __init__(self, routes: dict[str, Any]) -> None:
        self._routes = routes  # alias -> provider of its server

    async def aclose(self) -> None:
        """Close every server's client."""
        for provider in {id(p): p for p in self._routes.values()}.values():
            await provider.aclose()

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderItem]:
        """Stream from the server that serves ``request.model``."""
        provider = self._routes.get(request.model)
        if provider is None:
            raise ProviderError(f"unknown self-hosted model {request.model!r}: declare [self_hosted.models."
                                f"{request.model}] with a server")
        return provider.stream(request)  # type: ignore[no-any-return]


def _servers(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    servers = section.get("servers") or {}
    if not isinstance(servers, dict):
        raise ProviderError("[self_hosted.servers] must be a table of servers")
    for name, server in servers.items():
        if not isinstance(server, dict):
            raise ProviderError(f"[self_hosted.servers.{name}] must be a table")
        unknown = sorted(set(server) - _SERVER_KEYS)
        if unknown:
            raise ProviderError(f"[self_hosted.servers.{name}] has unknown keys: {', '.join(unknown)} "
                                f"(accepted: {', '.join(sorted(_SERVER_KEYS))})")
        if not isinstance(server.get("base_url"), str) or not server["base_url"].startswith(("http://", "https://")):
            raise ProviderError(f"[self_hosted.servers.{name}] needs base_url = \"http://host:port\"")
        if server.get("api_style", "chat_completions") not in ("chat_completions", "responses"):
            raise ProviderError(f"[self_hosted.servers.{name}] api_style must be chat_completions or responses")
    return servers


def build_self_hosted(settings: dict[str, Any]) -> SelfHostedProvider:
    """One provider serving every ``[self_hosted.models]`` alias through its server's client."""
    section = settings.get("self_hosted") or {}
    servers = _servers(section)
    clients: dict[str, Any] = {}
    routes: dict[str, Any] = {}
    for alias, spec in (section.get("models") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        server_name = spec.get("server")
        if server_name not in servers:
            raise ProviderError(f"self-hosted model {alias!r} names server {server_name!r}, which is not declared "
                                f"in [self_hosted.servers]")
        if server_name not in clients:
            server = servers[server_name]
            remote = {a: str(s.get("remote_model") or a) for a, s in section["models"].items()
                      if isinstance(s, dict) and s.get("server") == server_name}
            client_settings = {**settings, "base_url": server_url(server["base_url"]), "remote_models": remote,
                               "provider_name": "self_hosted"}
            style = server.get("api_style", "chat_completions")
            clients[server_name] = (OpenAIResponsesProvider(client_settings) if style == "responses"
                                    else ChatCompletionsProvider(client_settings))
        routes[alias] = clients[server_name]
    return SelfHostedProvider(routes)
