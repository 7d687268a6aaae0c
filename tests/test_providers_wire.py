"""The bytes each provider sends equal what the vendor's own client would send, turn after turn.

Providers build request bodies incrementally from a per-session wire cache and
hand them to the official client already encoded. Here the body a fake vendor
server received is compared, byte for byte, with the body the official client
itself sends for the same conversation converted afresh (``tests/wire_reference``):
for a conversation growing call by call, for a cold (just loaded) session, and
for the call after an interrupted or failed turn. Conversations carry a system
prompt, tools, an image, signed and encrypted reasoning, tool calls and results,
non-ASCII text and provider_params.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import msgspec
import pytest
import trio

from actors import open_service
from meerkat.providers.base import ProviderRequest, ToolSpec
from meerkat.providers.registry import build_provider
from meerkat.providers.wire_cache import WireCache
from meerkat.testing import DropConnection, Reply, ToolCall, open_fake_provider_server
from meerkat.transcript import (
    AssistantBlock,
    BlockAssistantMessage,
    Message,
    SystemMessage,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
    decode_messages,
    text_block,
    tool_use_block,
)
from provider_cases import CASES, REAL_PROVIDERS, clear_keys, collect, provider_service
from wire_reference import PROVIDER_CLASSES, sdk_bytes

T = "2026-01-01T00:00:00.000+00:00"
SCHEMA = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a"]}
TOOLS = [ToolSpec("add", "Add two numbers", SCHEMA), ToolSpec("echo", "Say it back — «verbatim»", {"type": "object"})]
IMAGE = {"type": "image", "media_type": "image/png", "source": {"type": "inline", "data": "iVBORw0KGgo="}}
OPENAI_ITEM = {"type": "reasoning", "id": "rs_01", "summary": [{"type": "summary_text", "text": "Add them."}],
               "encrypted_content": "gAAAA-opaque"}

#: Per provider: (model, provider_params, wire style of the reference call).
SETUPS = {
    "openai": ("gpt-5.5", {"reasoning_effort": "high", "reasoning_summary": "auto", "verbosity": "low"}, "openai"),
    "anthropic": ("claude-sonnet-4-6", {"thinking_budget_tokens": 2048, "stop_sequences": ["END"],
                                        "reasoning_effort": "high"}, "anthropic"),
    "gemini": ("gemini-3-flash-preview", {"temperature": 0.2, "top_k": 3, "thinking_level": "low"}, "gemini"),
    "self_hosted": ("local-llama", {"temperature": 0.1, "seed": 7, "stop_sequences": ["</s>"],
                                    "extra_body": {"num_ctx": 4096, "model": "llama3:8b"}}, "chat"),
    "self_hosted_responses": ("local-llama", {"temperature": 0.3}, "responses"),
}


def conversation_rows() -> list[Message]:
    """A session's rows: image, reasoning of two vendors, a tool loop, a failed run's lone prompt."""
    return [
        UserMessage(content=[{"type": "text", "text": "What is in this picture? Then add 2 and 3.5."}, IMAGE],
                    created_at=T),
        BlockAssistantMessage(blocks=[
            AssistantBlock("reasoning", {"text": "A pixel; then the tool.", "signature": "sig-anthropic"}),
            AssistantBlock("reasoning", {"text": "Add them.", "response_items": [OPENAI_ITEM]}),
            text_block("A single pixel ✓. Now \"adding\":\n"),
            AssistantBlock("tool_use", {"id": "call_1", "name": "add", "args": {"a": 2, "b": 3.5},
                                        "signature": "gsig-0"}),
            tool_use_block("call_2", "echo", {"text": "ünïcødé \u2028 \x01"}),
        ], stop_reason="tool_use", created_at=T),
        ToolResultsMessage(results=[ToolResult(tool_use_id="call_1", content="sum=5.5"),
                                    ToolResult(tool_use_id="call_2", content=[{"type": "text", "text": "boom"}],
                                               is_error=True)], created_at=T),
        BlockAssistantMessage(blocks=[text_block("2 + 3.5 = 5.5 🎉")], stop_reason="end_turn", created_at=T),
        UserMessage(content="A prompt whose run failed before any answer", created_at=T),
        BlockAssistantMessage(blocks=[], stop_reason="cancelled", created_at=T),
        UserMessage(content="And again, please", created_at=T),
        BlockAssistantMessage(blocks=[AssistantBlock("reasoning", {"text": "reasoning alone"})],
                              stop_reason="cancelled", created_at=T),
        UserMessage(content="Thanks!", created_at=T),
    ]


#: Prefixes a session sends as it grows (each ends where a model call happens).
CALL_POINTS = [1, 3, 5, 7, 9]


def _provider(name: str, url: str) -> Any:
    settings: dict[str, Any] = {"connect_timeout_s": 5.0, "read_timeout_s": 30.0}
    if name.startswith("self_hosted"):
        style = "responses" if name == "self_hosted_responses" else "chat_completions"
        return build_provider("self_hosted", {**settings, "api_key": None, "self_hosted": {
            "servers": {"local": {"base_url": url, "api_style": style}},
            "models": {"local-llama": {"server": "local", "remote_model": "llama3:8b"}}}})
    base = f"{url}/v1" if name == "openai" else url
    return build_provider(name, {**settings, "api_key": "sk-test-key", "base_url": base})


async def _call(provider: Any, request: ProviderRequest) -> None:
    async for _ in provider.stream(request):
        pass


def _request(name: str, rows: list[Message], cache: WireCache | None) -> ProviderRequest:
    model, params, _ = SETUPS[name]
    return ProviderRequest(model=model, messages=rows, system_prompt="Be brief. Sé breve.", tools=TOOLS,
                           max_tokens=1000, provider_params=params, wire_cache=cache)


async def _reference(server: Any, name: str, request: ProviderRequest) -> bytes:
    style = SETUPS[name][2]
    provider_name = "self_hosted" if name.startswith("self_hosted") else name
    return await sdk_bytes(server, style, request, remote_model="llama3:8b" if provider_name == "self_hosted" else None,
                           provider_name=provider_name)


@pytest.mark.parametrize("name", list(SETUPS))
async def test_growing_conversation_sends_the_sdks_own_bytes(name):
    rows = conversation_rows()
    async with open_fake_provider_server(default=Reply(text="ok")) as server:
        provider = _provider(name, server.url)
        try:
            cache = WireCache()
            for count in CALL_POINTS:
                request = _request(name, rows[:count], cache)
                await _call(provider, request)
                sent = server.requests[-1].raw
                assert sent == await _reference(server, name, request), f"call with {count} rows"
                # A retry of the same call sends the same bytes again.
                await _call(provider, request)
                assert server.requests[-1].raw == sent
                # ...and so does a session that has just been loaded (no cache, rows decoded afresh).
                cold = decode_messages(msgspec.json.encode(rows[:count]))
                await _call(provider, _request(name, cold, WireCache()))
                assert server.requests[-1].raw == sent
        finally:
            await provider.aclose()


@pytest.mark.parametrize("name", list(SETUPS))
async def test_a_cache_that_does_not_match_the_history_is_rebuilt(name):
    rows = conversation_rows()
    async with open_fake_provider_server(default=Reply(text="ok")) as server:
        provider = _provider(name, server.url)
        try:
            cache = WireCache()
            await _call(provider, _request(name, rows[:7], cache))
            # The history was cut and rewritten (another process, a reload): same length, other rows.
            other = [*rows[:4], UserMessage(content="Something else entirely", created_at=T)]
            request = _request(name, other, cache)
            await _call(provider, request)
            assert server.requests[-1].raw == await _reference(server, name, request)
            # A shorter history than the cache has seen.
            request = _request(name, rows[:3], cache)
            await _call(provider, request)
            assert server.requests[-1].raw == await _reference(server, name, request)
            # A longer one, reloaded after a rewrite in the middle (new row objects, as a reload makes).
            await _call(provider, _request(name, rows[:7], cache))
            rewritten = [*rows[:3], BlockAssistantMessage(blocks=[text_block("Rewritten")], stop_reason="end_turn",
                                                          created_at=T), *rows[4:9]]
            request = _request(name, decode_messages(msgspec.json.encode(rewritten)), cache)
            await _call(provider, request)
            assert b"Rewritten" in server.requests[-1].raw
            assert server.requests[-1].raw == await _reference(server, name, request)
        finally:
            await provider.aclose()


async def test_openai_reasoning_items_go_back_only_to_reasoning_models():
    rows = conversation_rows()[:3]
    async with open_fake_provider_server(default=Reply(text="ok")) as server:
        provider = _provider("openai", server.url)
        try:
            await _call(provider, _request("openai", rows, WireCache()))
            body = server.requests[-1].body
            assert body["include"] == ["reasoning.encrypted_content"] and body["store"] is False
            assert OPENAI_ITEM in body["input"]
            assert body["input"].index(OPENAI_ITEM) < [i.get("type") for i in body["input"]].index("function_call")
            # The Anthropic signature is not an OpenAI item: it never reaches OpenAI.
            assert "sig-anthropic" not in server.requests[-1].raw.decode()
            plain = msgspec.structs.replace(_request("openai", rows, WireCache()), model="gpt-4.1")
            await _call(provider, plain)
            body = server.requests[-1].body
            assert "include" not in body and all(i.get("type") != "reasoning" for i in body["input"])
        finally:
            await provider.aclose()


# -- through the session host: cold sessions, interrupted and failed turns ----------------------


def _spy(monkeypatch: pytest.MonkeyPatch, provider: str) -> list[ProviderRequest]:
    """Record every ProviderRequest the provider's class is asked to stream."""
    module, name = PROVIDER_CLASSES[provider]
    cls = getattr(importlib.import_module(module), name)
    seen: list[ProviderRequest] = []
    original = cls.stream

    def stream(self: Any, request: ProviderRequest) -> Any:
        seen.append(request)
        return original(self, request)

    monkeypatch.setattr(cls, "stream", stream)
    return seen


async def _committed(service: Any, session_id: str) -> list[Message]:
    rows = (await service.read_history(session_id)).to_wire()["messages"]
    return [m for m in decode_messages(json.dumps(rows)) if not isinstance(m, SystemMessage)]


async def _check_fresh(server: Any, provider: str, request: ProviderRequest, raw: bytes) -> None:
    """``raw`` is what the SDK sends for ``request`` converted afresh."""
    name = provider
    fresh = msgspec.structs.replace(request, messages=decode_messages(msgspec.json.encode(request.messages)),
                                    wire_cache=None)
    style = {"self_hosted": "chat"}.get(name, name)
    assert raw == await sdk_bytes(server, style, fresh,
                                  remote_model="llama3:8b" if name == "self_hosted" else None, provider_name=name)


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_cold_interrupted_and_failed_sessions_send_a_fresh_build(provider, tmp_path, monkeypatch):
    case = CASES[provider]
    seen = _spy(monkeypatch, provider)
    async with provider_service(case, tmp_path, monkeypatch, backend="sqlite") as (service, server):
        server.script(Reply(reasoning="Think.", text="Let me add.", tool_calls=(ToolCall("add", {"a": 2, "b": 3}),)),
                      Reply(text="It is 5."))
        first = await service.create_session([{"type": "text", "text": "Add 2 and 3"}, IMAGE], model=case.model,
                                             system_prompt="Be brief.")
        session_id = first.session_id
        # A turn that fails mid-answer keeps the partial text; the next call must send exactly that.
        server.script(DropConnection(Reply(text="This answer will be cut off here"), after_events=5))
        stream = await service.start_turn_streaming(session_id, "Tell me more")
        events = await collect(stream)
        assert "run_failed" in [e.type for e in events] and "text_delta" in [e.type for e in events]
        # An interrupted turn, too (after some text reached the client).
        server.script(Reply(text="slow " * 50))
        server.tokens_per_second = 200
        stream = await service.start_turn_streaming(session_id, "And more")
        talking = trio.Event()

        async def watch() -> None:
            async for event in stream:
                if event.type == "text_delta":
                    talking.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await talking.wait()
            await service.interrupt(session_id)
        server.tokens_per_second = None
        server.script(Reply(text="Back again."))
        await service.start_turn(session_id, "Still there?")
        assert len(seen) == 5
        committed = await _committed(service, session_id)
        last = seen[-1]
        assert list(last.messages) == committed[:-1]
        await _check_fresh(server, provider, last, server.requests[len(seen) - 1].raw)

    # The same session after a restart: loaded cold from the store.
    seen.clear()
    clear_keys(monkeypatch)
    async with provider_service(case, tmp_path, monkeypatch, backend="sqlite") as (service, server):
        server.script(Reply(text="Cold but fine."))
        await service.start_turn(session_id, "After the restart")
        committed = await _committed(service, session_id)
        assert list(seen[-1].messages) == committed[:-1]
        await _check_fresh(server, provider, seen[-1], server.requests[0].raw)


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_a_rewrite_or_restore_in_this_process_sends_the_new_head_revision(provider, tmp_path, monkeypatch):
    """A warm session (its wire cache holds the history) rewritten in the middle, its last row kept:
    the next call sends the rewritten transcript, never the cached prefix; a restore, the original."""
    case = CASES[provider]
    seen = _spy(monkeypatch, provider)
    async with provider_service(case, tmp_path, monkeypatch, backend="sqlite") as (service, server):
        server.script(Reply(text="A cat."))
        first = await service.create_session("Describe the original picture", model=case.model,
                                             system_prompt="Be brief.")
        session_id = first.session_id
        server.script(Reply(text="Sure."))
        await service.start_turn(session_id, "Say more")  # the cache now holds both turns
        rows = (await service.read_history(session_id)).to_wire()["messages"]
        index = next(i for i, row in enumerate(rows) if row.get("role") == "user")
        edited = {**rows[index], "content": "Describe the EDITED picture"}
        await service.rewrite_transcript(session_id, selection={"type": "message_range", "start": index,
                                                                "end": index + 1},
                                         replacement=[edited], reason="edit")
        for after in ("After the rewrite", "After the restore"):
            server.script(Reply(text="Noted."))
            await service.start_turn(session_id, after)
            committed = await _committed(service, session_id)
            assert list(seen[-1].messages) == committed[:-1], after
            raw = server.requests[-1].raw  # this turn's one call (the reference calls come after)
            await _check_fresh(server, provider, seen[-1], raw)
            edited_sent = b"EDITED picture" in raw
            assert edited_sent == (after == "After the rewrite") and (b"original picture" in raw) != edited_sent
            if after == "After the rewrite":
                await service.restore_transcript_revision(session_id, "r0", reason="undo")


# -- the cache itself --------------------------------------------------------------------------


def _counting_encoder(log: list[str]) -> Any:
    def encode(turn: Any) -> bytes:
        log.append(turn.role)
        return json.dumps({"role": turn.role, "parts": len(turn.parts)}).encode()
    return encode


async def test_each_call_converts_only_rows_added_since_the_last():
    rows: list[Message] = []
    for index in range(400):
        rows.append(UserMessage(content=f"question {index}", created_at=T))
        rows.append(BlockAssistantMessage(blocks=[text_block(f"answer {index}")], stop_reason="end_turn",
                                          created_at=T))
    cache = WireCache()
    log: list[str] = []
    encode = _counting_encoder(log)
    from meerkat.providers.wire_cache import encode_history as encode_pieces

    async def encode_history(*args: Any) -> bytes:
        return b",".join(await encode_pieces(*args))

    full = await encode_history(cache, "test", rows[:-1], encode)  # a cold session: in a worker thread
    assert len(log) == 799
    log.clear()
    # The next call (the answer, a tool loop, a new prompt): only the open turn and the new rows.
    grown = [*rows[:-1], rows[-1], UserMessage(content="one more", created_at=T)]
    again = await encode_history(cache, "test", grown, encode)
    assert log == ["user", "assistant", "user"]
    assert again.startswith(full[:-30]) and again == await encode_history(None, "test", grown, _counting_encoder([]))
    # Rows merged into the open user turn are re-encoded with it, never appended twice.
    log.clear()
    merged = [*grown, ToolResultsMessage(results=[], created_at=T), UserMessage(content="and", created_at=T)]
    assert await encode_history(cache, "test", merged, encode) == await encode_history(
        None, "test", merged, _counting_encoder([]))
    assert log == ["user"]


async def test_the_mock_counts_only_new_rows_and_agrees_with_a_full_count():
    from meerkat.providers.mock import MockProvider, _message_words

    rows = conversation_rows()
    cache = WireCache()
    measured: list[Any] = []

    def counting(message: Any) -> int:
        measured.append(message)
        return _message_words(message)

    tally = cache.tally("words")
    assert tally.total(rows[:5], counting) == sum(map(_message_words, rows[:5])) and len(measured) == 5
    measured.clear()
    assert tally.total(rows, counting) == sum(map(_message_words, rows)) and measured == rows[5:]
    # Another history (a reload): counted afresh.
    fresh = decode_messages(msgspec.json.encode(rows[:3]))
    assert tally.total(fresh, counting) == sum(map(_message_words, rows[:3]))

    provider = MockProvider()
    usage = [i for i in [item async for item in provider.stream(_request("openai", rows, WireCache()))]
             if type(i).__name__ == "UsageReport"]
    plain = [i for i in [item async for item in provider.stream(_request("openai", rows, None))]
             if type(i).__name__ == "UsageReport"]
    assert usage[0].usage.input_tokens == plain[0].usage.input_tokens > 0


def test_transcript_rows_stay_out_of_the_cyclic_gc():
    """A full GC pass walks every tracked object: rows of long sessions must not be among them."""
    import gc

    rows = decode_messages(msgspec.json.encode(conversation_rows()))
    assert not any(gc.is_tracked(row) for row in rows)
    blocks = [b for row in rows if isinstance(row, BlockAssistantMessage) for b in row.blocks]
    results = [r for row in rows if isinstance(row, ToolResultsMessage) for r in row.results]
    assert blocks and results and not any(gc.is_tracked(x) for x in blocks + results)


def test_loading_a_provider_sdk_frees_garbage_cycles_instead_of_freezing_them(tmp_path):
    """The registry freezes the GC's objects once a vendor SDK is imported: cycles that were
    already garbage then must be collected, not pinned for the life of the process."""
    import subprocess
    import sys

    script = tmp_path / "freeze.py"
    script.write_text(
        "import gc, weakref\n"
        "from meerkat.providers.registry import build_provider\n"
        "class Node: pass\n"
        "gc.disable()  # as if no full collection had happened to run since the cycle died\n"
        "a, b = Node(), Node(); a.b, b.a = b, a\n"
        "dead = weakref.ref(a); del a, b\n"
        "build_provider('openai', {'api_key': 'sk-test', 'base_url': 'http://127.0.0.1:9/v1',\n"
        "                          'connect_timeout_s': 5.0, 'read_timeout_s': 5.0})\n"
        "gc.enable(); gc.collect()\n"
        "print('freed' if dead() is None else 'pinned')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "freed"


@pytest.mark.parametrize("body", [b'{"model":"gpt-5.5","input":[{"role":"user","content":"hi"}', b'{"model":"m",}',
                                  b'{"model":"m","input":[]}{"x":1}'])
async def test_the_fake_vendor_refuses_a_broken_body_when_not_recording(body):
    """Benchmarks run the fake vendor without recording (bodies are not parsed into objects): a body
    that merely starts like JSON (truncated, badly spliced) is still a 400, not a reply."""
    import httpx2

    async with open_fake_provider_server(default=Reply(text="ok"), record=False) as server:
        async with httpx2.AsyncClient(base_url=server.url) as client:
            refused = await client.post("/v1/responses", content=body)
            fine = await client.post("/v1/responses", content=b'{"model":"gpt-5.5","input":[],"stream":true}')
    assert refused.status_code == 400 and "not JSON" in refused.text
    assert fine.status_code == 200 and "gpt-5.5" in fine.text
