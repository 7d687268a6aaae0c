"""Reasoning through the real provider clients: handed back in tool loops, and retried when cut off.

* OpenAI reasoning models run with ``store: false``: their reasoning items
  (with ``encrypted_content``, requested through ``include``) must come back in
  the next call of a tool loop, before the function calls they led to.
* A stream that breaks after reasoning deltas but before any text or tool call
  reached the client is retried (the ``retrying`` event tells clients to drop
  the reasoning shown so far); once text was streamed it is not.
"""

from __future__ import annotations

import pytest

from meerkat.testing import DropConnection, Reply, ToolCall
from provider_cases import CASES, REAL_PROVIDERS, collect, provider_service

#: Events to let through before the cut: inside the reasoning, before any text.
REASONING_PREFIX = {"anthropic": 5, "openai": 4, "gemini": 2, "self_hosted": 3}


async def test_openai_reasoning_items_come_back_in_the_tool_loop(tmp_path, monkeypatch):
    case = CASES["openai"]
    async with provider_service(case, tmp_path, monkeypatch, backend="sqlite") as (service, server):
        server.script(Reply(reasoning="Two sums are needed.", text="Computing.",
                            tool_calls=(ToolCall("add", {"a": 2, "b": 3}),)),
                      Reply(text="It is 5."))
        result = await service.create_session("What is 2+3?", model=case.model)
        assert result.text == "It is 5."
        first, second = server.requests[0].body, server.requests[1].body
        assert first["include"] == ["reasoning.encrypted_content"] and first["store"] is False
        kinds = [item.get("type", item.get("role")) for item in second["input"]]
        assert kinds == ["user", "reasoning", "assistant", "function_call", "function_call_output"]
        reasoning = second["input"][1]
        assert reasoning == {"type": "reasoning", "id": "rs_fake",
                             "summary": [{"type": "summary_text", "text": "Two sums are needed."}],
                             "encrypted_content": f"enc-{len('Two sums are needed.')}"}
        # The item is kept in the transcript, so a later process sends it too.
        history = (await service.read_history(result.session_id)).to_wire()["messages"]
        blocks = [b for row in history if row["role"] == "block_assistant" for b in row["blocks"]]
        assert blocks[0]["block_type"] == "reasoning" and blocks[0]["data"]["response_items"] == [reasoning]


async def test_models_without_reasoning_get_no_include(tmp_path, monkeypatch):
    case = CASES["openai"]
    async with provider_service(case, tmp_path, monkeypatch) as (service, server):
        server.script(Reply(text="ok"))
        await service.create_session("hi", model="gpt-4.1", provider="openai")
        assert "include" not in server.requests[0].body


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_a_stream_cut_inside_the_reasoning_is_retried(provider, tmp_path, monkeypatch):
    case = CASES[provider]
    async with provider_service(case, tmp_path, monkeypatch) as (service, server):
        cut = Reply(reasoning="Let me think about this for a while", text="first answer")
        server.script(DropConnection(cut, after_events=REASONING_PREFIX[provider]),
                      Reply(reasoning="Thinking again", text="The answer."))
        stream = await service.create_session_streaming("question", model=case.model)
        events = await collect(stream)
        result = await stream.result()
        assert result.text == "The answer."
        kinds = [e.type for e in events]
        assert "reasoning_delta" in kinds[:kinds.index("retrying")]
        assert "text_delta" not in kinds[:kinds.index("retrying")]
        assert len(server.requests) == 2
        completed = [e.payload for e in events if e.type == "reasoning_complete"]
        assert [c.content for c in completed] == ["Thinking again"]


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_a_stream_cut_after_text_is_not_retried(provider, tmp_path, monkeypatch):
    case = CASES[provider]
    async with provider_service(case, tmp_path, monkeypatch) as (service, server):
        server.script(DropConnection(Reply(text="one two three four five six seven"), after_events=5),
                      Reply(text="never sent"))
        stream = await service.create_session_streaming("question", model=case.model)
        events = await collect(stream)
        with pytest.raises(Exception):
            await stream.result()
        kinds = [e.type for e in events]
        assert "text_delta" in kinds and "retrying" not in kinds and "run_failed" in kinds
        assert len(server.requests) == 1
