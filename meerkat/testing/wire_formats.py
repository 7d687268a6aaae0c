"""Scripted replies encoded as each vendor streams them.

Every encoder turns a :class:`~meerkat.testing.script.Reply` into the list of
server-sent-event frames the real API would send, one text or reasoning token
per delta event, so the official SDK clients parse them exactly as they parse
the vendor's stream. Error bodies follow each vendor's shape too.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from .script import Reply, tokens

__all__ = ["ENCODERS", "ERROR_BODIES", "sse", "anthropic_events", "responses_events", "chat_events", "gemini_events"]


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE frame."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"{head}data: {payload}\n\n".encode()


def _call_ids(reply: Reply, prefix: str) -> list[str]:
    return [call.id or f"{prefix}{index:02d}" for index, call in enumerate(reply.tool_calls)]


# -- Anthropic Messages ---------------------------------------------------------------


def anthropic_events(reply: Reply, model: str) -> list[bytes]:
    """``message_start`` ... ``message_stop``, with thinking, text and tool_use blocks."""
    uncached = reply.input_tokens - reply.cache_read_tokens - reply.cache_creation_tokens
    usage = {"input_tokens": uncached, "output_tokens": 1, "cache_creation_input_tokens": reply.cache_creation_tokens,
             "cache_read_input_tokens": reply.cache_read_tokens}
    frames = [sse({"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}}, "message_start"),
        sse({"type": "ping"}, "ping")]
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        frames.append(sse({"type": "content_block_start", "index": index, "content_block": start},
                          "content_block_start"))
        frames.extend(sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")
                      for d in deltas)
        frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1

    if reply.reasoning:
        block({"type": "thinking", "thinking": "", "signature": ""},
              [{"type": "thinking_delta", "thinking": t} for t in tokens(reply.reasoning)]
              + [{"type": "signature_delta", "signature": f"sig-{len(reply.reasoning)}"}])
    if reply.text:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in tokens(reply.text)])
    for call, call_id in zip(reply.tool_calls, _call_ids(reply, "toolu_fake")):
        arguments = json.dumps(call.args)
        half = len(arguments) // 2
        block({"type": "tool_use", "id": call_id, "name": call.name, "input": {}},
              [{"type": "input_json_delta", "partial_json": arguments[:half]},
               {"type": "input_json_delta", "partial_json": arguments[half:]}])
    frames.append(sse({"type": "message_delta", "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                       "usage": {"output_tokens": reply.total_output_tokens}}, "message_delta"))
    frames.append(sse({"type": "message_stop"}, "message_stop"))
    return frames


# -- OpenAI Responses -----------------------------------------------------------------


def responses_events(reply: Reply, model: str, encrypted_reasoning: bool = False) -> list[bytes]:
    """``response.created`` ... ``response.completed`` (or ``response.incomplete``).

    ``encrypted_reasoning``: the request asked for ``reasoning.encrypted_content``,
    so reasoning items carry an (opaque, here made-up) ``encrypted_content``.
    """
    seq = 0
    frames: list[bytes] = []

    def emit(kind: str, **body: Any) -> None:
        nonlocal seq
        frames.append(sse({"type": kind, "sequence_number": seq, **body}, kind))
        seq += 1

    base = {"id": "resp_fake", "object": "response", "created_at": 0, "model": model, "output": [],
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
    emit("response.created", response={**base, "status": "in_progress"})
    output: list[dict[str, Any]] = []
    if reply.reasoning:
        item = {"type": "reasoning", "id": "rs_fake", "summary": []}
        emit("response.output_item.added", output_index=len(output), item=item)
        for token in tokens(reply.reasoning):
            emit("response.reasoning_summary_text.delta", item_id="rs_fake", output_index=len(output),
                 summary_index=0, delta=token)
        done = {**item, "summary": [{"type": "summary_text", "text": reply.reasoning}]}
        if encrypted_reasoning:
            done["encrypted_content"] = f"enc-{len(reply.reasoning)}"
        emit("response.output_item.done", output_index=len(output), item=done)
        output.append(done)
    if reply.text:
        item = {"type": "message", "id": "msg_fake", "role": "assistant", "status": "in_progress", "content": []}
        emit("response.output_item.added", output_index=len(output), item=item)
        for token in tokens(reply.text):
            emit("response.output_text.delta", item_id="msg_fake", output_index=len(output), content_index=0,
                 delta=token, logprobs=[])
        emit("response.output_text.done", item_id="msg_fake", output_index=len(output), content_index=0,
             text=reply.text, logprobs=[])
        done = {**item, "status": "completed",
                "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}]}
        emit("response.output_item.done", output_index=len(output), item=done)
        output.append(done)
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, _call_ids(reply, "call_fake"))):
        item = {"type": "function_call", "id": f"fc_fake{index}", "call_id": call_id, "name": call.name,
                "arguments": "", "status": "in_progress"}
        emit("response.output_item.added", output_index=len(output), item=item)
        arguments = json.dumps(call.args)
        emit("response.function_call_arguments.delta", item_id=item["id"], output_index=len(output), delta=arguments)
        emit("response.function_call_arguments.done", item_id=item["id"], output_index=len(output),
             arguments=arguments)
        done = {**item, "arguments": arguments, "status": "completed"}
        emit("response.output_item.done", output_index=len(output), item=done)
        output.append(done)
    usage = {"input_tokens": reply.input_tokens,
             "input_tokens_details": {"cached_tokens": reply.cache_read_tokens + reply.cache_creation_tokens},
             "output_tokens": reply.total_output_tokens,
             "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
             "total_tokens": reply.input_tokens + reply.total_output_tokens}
    if reply.stop_reason == "max_tokens":
        emit("response.incomplete", response={**base, "status": "incomplete", "output": output, "usage": usage,
                                              "incomplete_details": {"reason": "max_output_tokens"}})
    else:
        emit("response.completed", response={**base, "status": "completed", "output": output, "usage": usage})
    return frames


# -- OpenAI-compatible chat completions ---------------------------------------------------


def chat_events(reply: Reply, model: str) -> list[bytes]:
    """``chat.completion.chunk`` frames, the usage chunk, then ``[DONE]``."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    frames = [chunk({"role": "assistant", "content": ""})]
    frames.extend(chunk({"reasoning_content": t}) for t in tokens(reply.reasoning))
    frames.extend(chunk({"content": t}) for t in tokens(reply.text))
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, _call_ids(reply, "call_fake"))):
        arguments = json.dumps(call.args)
        half = len(arguments) // 2
        frames.append(chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                             "function": {"name": call.name, "arguments": arguments[:half]}}]}))
        frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}))
    finish = {"tool_use": "tool_calls", "max_tokens": "length"}.get(reply.stop_reason, "stop")
    frames.append(chunk({}, finish))
    frames.append(sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [], "usage": {
                           "prompt_tokens": reply.input_tokens, "completion_tokens": reply.total_output_tokens,
                           "total_tokens": reply.input_tokens + reply.total_output_tokens,
                           "prompt_tokens_details": {"cached_tokens": reply.cache_read_tokens},
                           "completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens}}}))
    frames.append(sse("[DONE]"))
    return frames


# -- Gemini streamGenerateContent ----------------------------------------------------


def gemini_events(reply: Reply, model: str) -> list[bytes]:
    """``GenerateContentResponse`` chunks; the last carries ``finishReason`` and the usage."""
    def chunk(parts: list[dict[str, Any]], **extra: Any) -> bytes:
        candidate = {"content": {"parts": parts, "role": "model"}, "index": 0, **extra}
        return sse({"candidates": [candidate], "modelVersion": model})

    frames = [chunk([{"text": t, "thought": True}]) for t in tokens(reply.reasoning)]
    frames.extend(chunk([{"text": t}]) for t in tokens(reply.text))
    if reply.tool_calls:
        frames.append(chunk([{"functionCall": {"id": call_id, "name": call.name, "args": call.args},
                              "thoughtSignature": f"gsig-{index}"}
                             for index, (call, call_id) in enumerate(zip(reply.tool_calls, _call_ids(reply, "gc_")))]))
    thoughts = reply.reasoning_tokens
    usage = {"promptTokenCount": reply.input_tokens, "candidatesTokenCount": reply.total_output_tokens - thoughts,
             "thoughtsTokenCount": thoughts, "cachedContentTokenCount": reply.cache_read_tokens,
             "totalTokenCount": reply.input_tokens + reply.total_output_tokens}
    finish = "MAX_TOKENS" if reply.stop_reason == "max_tokens" else "STOP"
    frames.append(sse({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": finish,
                                       "index": 0}], "usageMetadata": usage, "modelVersion": model}))
    return frames


ENCODERS: dict[str, Callable[[Reply, str], list[bytes]]] = {
    "anthropic": anthropic_events, "openai": responses_events, "chat": chat_events, "gemini": gemini_events,
}

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


def _openai_error(status: int, message: str) -> dict[str, Any]:
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    return {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": code}}


ERROR_BODIES: dict[str, Callable[[int, str], dict[str, Any]]] = {
    "anthropic": lambda status, message: {"type": "error", "error": {
        "type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}},
    "openai": _openai_error,
    "chat": _openai_error,
    "gemini": lambda status, message: {"error": {"code": status, "message": message,
                                                 "status": _GOOGLE_STATUS.get(status, "INTERNAL")}},
}
