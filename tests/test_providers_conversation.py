"""One scripted conversation through each real provider client, against its fake vendor server.

A text turn, a turn with two parallel tool calls and their results, and a
follow-up, run through ``actors.open_service`` with the real SDK clients
(anthropic, openai, httpx2) on loopback: every provider must give the same event
shape, the same transcript and the same usage, and send the vendor a correct
request (history, tool results, signatures, provider_params).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meerkat.errors import InvalidParams
from meerkat.events import encode_envelope
from meerkat.testing import Reply, ToolCall
from provider_cases import CASES, REAL_PROVIDERS, collect, provider_service, shape

SCRIPT = [
    Reply(reasoning="The user greets me.", text="Hello! How can I help?", input_tokens=20, cache_read_tokens=5,
          output_tokens=7),
    Reply(reasoning="Use both tools.", text="Let me compute both.", input_tokens=40, cache_read_tokens=10,
          output_tokens=12, tool_calls=(ToolCall("add", {"a": 2, "b": 3}), ToolCall("mul", {"a": 4, "b": 5}))),
    Reply(text="The sum is 5 and the product is 20.", input_tokens=60, output_tokens=9),
    Reply(text="You're welcome.", input_tokens=80, output_tokens=4),
]

TEXT_TURN = ["run_started", "turn_started", "reasoning_delta", "text_delta", "reasoning_complete", "text_complete",
             "turn_completed", "run_completed"]
TOOL_TURN = ["run_started", "turn_started", "reasoning_delta", "text_delta", "reasoning_complete", "text_complete",
             "tool_call_requested", "tool_execution_started",
             "tool_execution_completed", "tool_result_received", "tool_execution_completed", "tool_result_received",
             "turn_completed", "turn_started", "text_delta", "text_complete", "turn_completed", "run_completed"]
FOLLOW_UP = ["run_started", "turn_started", "text_delta", "text_complete", "turn_completed", "run_completed"]


def _transcript(messages: list[Any]) -> list[Any]:
    """History rows without ids and timestamps (tool-call ids differ by vendor)."""
    rows = []
    for row in messages:
        if row["role"] == "block_assistant":
            blocks = [(b["block_type"], b["data"].get("text") or (b["data"].get("name"), b["data"].get("args")))
                      for b in row["blocks"]]
            rows.append(("assistant", row["stop_reason"], blocks))
        elif row["role"] == "tool_results":
            rows.append(("tool_results", [(r["content"], r.get("is_error", False)) for r in row["results"]]))
        else:
            rows.append((row["role"], row["content"]))
    return rows


async def _run_conversation(provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    case = CASES[provider]
    async with provider_service(case, tmp_path, monkeypatch, backend="sqlite") as (service, server):
        server.script(*SCRIPT)
        first = await service.create_session_streaming("Hi there", model=case.model, system_prompt="Be brief.")
        events = [await collect(first)]
        session_id = first.session_id
        assert (await first.result()).text == "Hello! How can I help?"
        second = await service.start_turn_streaming(session_id, "What are 2+3 and 4*5?")
        events.append(await collect(second))
        third = await service.start_turn_streaming(session_id, "Thanks")
        events.append(await collect(third))
        result = await third.result()
        history = (await service.read_history(session_id)).to_wire()["messages"]
        view = await service.read_session(session_id)
        config = (await service.get_config()).to_wire()
        assert server.pending == 0
        return {"events": events, "result": result, "history": history, "requests": server.requests,
                "session": view, "config": config, "case": case}


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_scripted_conversation_through_each_provider(provider, tmp_path, monkeypatch):
    run = await _run_conversation(provider, tmp_path, monkeypatch)
    case = run["case"]
    assert [shape(e) for e in run["events"]] == [TEXT_TURN, TOOL_TURN, FOLLOW_UP]

    assert run["session"].provider == provider and run["session"].model == case.model
    assert _transcript(run["history"]) == [
        ("system", "Be brief."),
        ("user", "Hi there"),
        ("assistant", "end_turn", [("reasoning", "The user greets me."), ("text", "Hello! How can I help?")]),
        ("user", "What are 2+3 and 4*5?"),
        ("assistant", "tool_use", [("reasoning", "Use both tools."), ("text", "Let me compute both."),
                                   ("tool_use", ("add", {"a": 2, "b": 3})), ("tool_use", ("mul", {"a": 4, "b": 5}))]),
        ("tool_results", [("sum=5", False), ("product=20", False)]),
        ("assistant", "end_turn", [("text", "The sum is 5 and the product is 20.")]),
        ("user", "Thanks"),
        ("assistant", "end_turn", [("text", "You're welcome.")]),
    ]

    # Usage: presented input (cache included) and output add up the same for every vendor.
    assert (run["result"].usage.input_tokens, run["result"].usage.output_tokens) == (200, 32)
    completed = [e.payload for turn in run["events"] for e in turn if e.type == "turn_completed"]
    assert [u.usage.accounting.presented_tokens for u in completed] == [20, 40, 60, 80]
    assert [u.usage.output_tokens for u in completed] == [7, 12, 9, 4]
    assert all(u.usage.accounting.model == case.model for u in completed)

    # The vendor saw the system prompt, both tool results, then the whole history on the follow-up.
    requests = run["requests"]
    assert len(requests) == 4
    after_tools, follow_up = json.dumps(requests[2].body), json.dumps(requests[3].body)
    for text in ("Be brief.", "sum=5", "product=20", "What are 2+3 and 4*5?"):
        assert text in after_tools
    for text in ("Hi there", "Hello! How can I help?", "The sum is 5 and the product is 20.", "Thanks"):
        assert text in follow_up


@pytest.mark.parametrize("provider", [p for p in REAL_PROVIDERS if CASES[p].key is not None])
async def test_api_keys_stay_out_of_store_events_and_config(provider, tmp_path, monkeypatch):
    case = CASES[provider]
    assert case.key is not None
    run = await _run_conversation(provider, tmp_path, monkeypatch)
    key = case.key.encode()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes(), path
    assert all(key not in encode_envelope(e) for turn in run["events"] for e in turn)
    assert case.key not in json.dumps(run["config"])
    # ...but it did reach the vendor, in a header (never in the URL).
    sent = run["requests"][0]
    assert case.key in json.dumps(sent.headers) and case.key not in sent.query


async def test_anthropic_gets_its_thinking_signature_back_in_the_tool_loop(tmp_path, monkeypatch):
    run = await _run_conversation("anthropic", tmp_path, monkeypatch)
    assistant = [m for m in run["requests"][2].body["messages"] if m["role"] == "assistant"][-1]
    assert [b["type"] for b in assistant["content"]] == ["thinking", "text", "tool_use", "tool_use"]
    assert assistant["content"][0]["signature"] == f"sig-{len('Use both tools.')}"
    results = run["requests"][2].body["messages"][-1]["content"]
    assert [b["type"] for b in results] == ["tool_result", "tool_result"]


async def test_gemini_gets_its_thought_signatures_back_with_the_calls(tmp_path, monkeypatch):
    run = await _run_conversation("gemini", tmp_path, monkeypatch)
    model_turn = [c for c in run["requests"][2].body["contents"] if c["role"] == "model"][-1]
    calls = [p for p in model_turn["parts"] if "functionCall" in p]
    assert [p["thoughtSignature"] for p in calls] == ["gsig-0", "gsig-1"]
    responses = [p["functionResponse"] for p in run["requests"][2].body["contents"][-1]["parts"]]
    assert [(r["name"], r["response"]) for r in responses] == [("add", {"result": "sum=5"}),
                                                               ("mul", {"result": "product=20"})]


WIRE_PARAMS = {
    "anthropic": ({"reasoning_effort": "max", "stop_sequences": ["END"], "thinking_budget_tokens": 2048},
                  lambda body: (body["output_config"], body["stop_sequences"], body["thinking"], body["max_tokens"]),
                  ({"effort": "max"}, ["END"], {"type": "enabled", "budget_tokens": 2048}, 1000 + 2048)),
    "openai": ({"reasoning_effort": "high", "reasoning_summary": "auto", "verbosity": "low"},
               lambda body: (body["reasoning"], body["text"], body["max_output_tokens"], body["store"]),
               ({"effort": "high", "summary": "auto"}, {"verbosity": "low"}, 1000, False)),
    "gemini": ({"temperature": 0.2, "top_k": 3, "thinking_level": "low"},
               lambda body: (body["generationConfig"]["temperature"], body["generationConfig"]["topK"],
                             body["generationConfig"]["thinkingConfig"], body["generationConfig"]["maxOutputTokens"]),
               (0.2, 3, {"includeThoughts": True, "thinkingLevel": "low"}, 1000)),
    "self_hosted": ({"temperature": 0.1, "seed": 7, "extra_body": {"num_ctx": 4096}},
                    lambda body: (body["temperature"], body["seed"], body["num_ctx"], body["model"], body["max_tokens"]),
                    (0.1, 7, 4096, "llama3:8b", 1000)),
}


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_provider_params_reach_the_wire_and_bad_ones_are_named(provider, tmp_path, monkeypatch):
    params, read, expected = WIRE_PARAMS[provider]
    case = CASES[provider]
    async with provider_service(case, tmp_path, monkeypatch) as (service, server):
        server.script(Reply(text="ok"), Reply(text="ok again"))
        result = await service.create_session(
            "hi", model=case.model, max_tokens=1000, provider_params=params)
        assert read(server.requests[0].body) == expected
        # A per-turn override replaces the session's params for that turn.
        await service.start_turn(result.session_id, "again", provider_params={"max_output_tokens": 77})
        second = json.dumps(server.requests[1].body)
        assert "77" in second and "2048" not in second and '"high"' not in second

        with pytest.raises(InvalidParams, match="provider_params.bogus_knob is not accepted"):
            await service.create_session("hi", model=case.model, provider_params={"bogus_knob": 1})
        with pytest.raises(InvalidParams, match="provider_params.max_output_tokens must be an integer"):
            await service.create_session("hi", model=case.model, provider_params={"max_output_tokens": "lots"})
    assert len(server.requests) == 2  # the rejected sessions never called the vendor


async def test_seed_reasoning_effort_reaches_gpt_and_unsupported_params_are_refused(tmp_path, monkeypatch):
    async with provider_service(CASES["openai"], tmp_path, monkeypatch) as (service, server):
        server.script(Reply(text="Monads are..."))
        await service.create_session("Explain monads", model="gpt-5.5", provider="openai",
                                     provider_params={"reasoning_effort": "high"})
        assert server.requests[0].body["reasoning"] == {"effort": "high"}
        with pytest.raises(InvalidParams, match="temperature is not accepted by claude-sonnet-4-6"):
            await service.create_session("x", model="claude-sonnet-4-6", provider_params={"temperature": 0.2})
        with pytest.raises(InvalidParams, match="reasoning_effort must be one of"):
            await service.create_session("x", model="gpt-5.5", provider_params={"reasoning_effort": "extreme"})
        with pytest.raises(InvalidParams, match="temperature is not accepted by gpt-5.5"):
            await service.create_session("x", model="gpt-5.5", provider_params={"temperature": 0.2})
