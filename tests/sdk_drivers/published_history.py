"""The published ``meerkat-sdk`` 0.9.6's history API against our ``rkat-rpc``.

Run by ``tests/test_sdk_published_history.py`` with the interpreter of ``.venv-sdk``:
forks (``fork_at``, ``fork_replace``), transcript rewrites, revisions and restore,
keyed system-prompt updates (checked on what a fake Anthropic server received),
instruction activations, ATIF export, and a fork seen by another process.
Environment: ``REAL_BIN`` (our rkat-rpc), ``PROXY_BIN`` (the recording proxy),
``WORK`` (scratch), ``VENDOR_URL`` / ``VENDOR_LOG`` (the fake vendor and the file
it records requests to). One JSON line per scenario.
"""

import asyncio
import hashlib
import json
import os
from pathlib import Path

from meerkat import DeferredSession
from meerkat.types import (
    ForkCacheInheritanceUnavailable,
    InstructionActivationEffective,
    InstructionActivationRequest,
    InstructionRevisionRef,
)
from published_common import LOGS, client, proxied, raises, realm, run_scenarios

def raw(history):
    return [m.raw for m in history.messages]


async def turn_on(c, session_id, prompt):
    """A turn on a session known by id (a fork), as the SDK offers it: a DeferredSession handle."""
    return await DeferredSession(c, session_id).start_turn(prompt)


async def two_turns(c, **create):
    s = await c.create_session("first question", **create)
    await s.turn("second question")
    return s


# -- scenarios -------------------------------------------------------------------------


async def h1_fork_at_is_exactly_the_prefix():
    """fork_at copies exactly the first N rows; a turn on the fork leaves the source unchanged."""
    async with proxied("h1") as c:
        s = await two_turns(c, labels={"team": "a"})
        before = raw(await s.history())
        assert len(before) == 4
        fork = await s.fork_at(2)
        assert fork.source_session_id == s.id and fork.session_id != s.id and fork.message_count == 2
        assert isinstance(fork.cache_inheritance, ForkCacheInheritanceUnavailable)
        assert fork.cache_inheritance.message_count == 2 and fork.reactivated_instruction_count == 0
        child = raw(await c.read_session_history(fork.session_id))
        assert child == before[:2], (child, before[:2])
        result = await turn_on(c, fork.session_id, "a different second question")
        assert "a different second question" in result.text
        assert raw(await s.history()) == before
        after = raw(await c.read_session_history(fork.session_id))
        assert after[:2] == before[:2] and len(after) == 4 and after[2]["content"] == "a different second question"
        listed = {x.session_id for x in await c.list_sessions()}
        assert {s.id, fork.session_id} <= listed
        info = await c.read_session(fork.session_id)
        assert info["labels"] == {"team": "a"} if isinstance(info, dict) else True
        empty = await c.fork_session_at(s.id, 0)
        assert empty.message_count == 0 and empty.cache_inheritance.message_count == 0
        assert raw(await c.read_session_history(empty.session_id)) == []
        assert "fresh start" in (await turn_on(c, empty.session_id, "fresh start")).text
        whole = await c.fork_session_at(s.id, 4)
        assert raw(await c.read_session_history(whole.session_id)) == before
        await raises("-32602", c.fork_session_at(s.id, 5))
        await raises("-32602", c.fork_session_at(s.id, -1))
        await raises("-32001", c.fork_session_at("01936f8a-7b2c-7000-8000-000000000099", 0))


async def h2_fork_replace():
    """fork_replace keeps the rows before the fork point and replaces the row at it (whole or one block)."""
    async with proxied("h2") as c:
        s = await two_turns(c)
        before = raw(await s.history())
        fork = await s.fork_replace(2, {"type": "message", "message": {"role": "user",
                                                                        "content": "what about this instead?"}})
        assert fork.message_count == 3
        child = raw(await c.read_session_history(fork.session_id))
        assert child[:2] == before[:2] and child[2]["role"] == "user"
        assert child[2]["content"] == "what about this instead?"
        result = await turn_on(c, fork.session_id, "go on")
        assert result.text and raw(await s.history()) == before
        edited = await c.fork_session_replace(s.id, 1, {"type": "assistant_block", "block_index": 0,
                                                        "block": {"block_type": "text",
                                                                  "data": {"text": "An edited answer."}}})
        rows = raw(await c.read_session_history(edited.session_id))
        assert len(rows) == 2 and rows[1]["blocks"][0]["data"]["text"] == "An edited answer."
        await raises("-32602", c.fork_session_replace(s.id, 0, {"type": "assistant_block", "block_index": 0,
                                                                "block": {"block_type": "text", "data": {}}}))
        await raises("-32602", c.fork_session_replace(s.id, 4, {"type": "message", "message": {
            "role": "user", "content": "past the end"}}))
        await raises("-32602", c.fork_session_replace(s.id, 0, {"type": "bogus"}))


async def h3_rewrite_then_restore_gives_back_the_rows():
    """A rewrite is a new revision; the old stays readable; restoring it gives back the original rows."""
    async with proxied("h3") as c:
        s = await two_turns(c)
        original = raw(await s.history())
        listing = await s.transcript_revisions()
        assert listing.head_revision == "r0" and listing.entries == []
        done = await s.rewrite_transcript({"type": "message_range", "start": 1, "end": 3},
                                          [{"role": "user", "content": "merged question"}],
                                          {"kind": "prune", "note": "tidy up"}, actor="tester",
                                          expected_parent_revision="r0")
        assert (done.parent_revision, done.revision, done.message_count) == ("r0", "r1", 3)
        assert done.commit["messages_before"] == 4 and done.commit["messages_after"] == 3
        assert done.commit["actor"] == "tester" and done.commit["reason"] == {"kind": "prune", "note": "tidy up"}
        now = raw(await s.history())
        assert len(now) == 3 and now[0] == original[0] and now[1]["content"] == "merged question"
        assert now[2] == original[3]
        old = await s.transcript_revision("r0")
        assert old.head_revision == "r1" and old.message_count == 4 and [m.raw for m in old.messages] == original
        page = await s.transcript_revision("r0", offset=1, limit=2)
        assert [m.raw for m in page.messages] == original[1:3] and page.has_more
        listing = await s.transcript_revisions()
        assert listing.head_revision == "r1"
        assert [(e.revision, e.parent_revision, e.reason, e.actor) for e in listing.entries] == [
            ("r1", "r0", "prune", "tester")]
        # A stale compare-and-set is refused and changes nothing.
        await raises("-32602", s.rewrite_transcript({"type": "message_range", "start": 0, "end": 1}, [],
                                                    {"kind": "x"}, expected_parent_revision="r0"))
        restored = await s.restore_transcript_revision("r0", {"kind": "undo"})
        assert (restored.parent_revision, restored.revision, restored.message_count) == ("r1", "r2", 4)
        assert raw(await s.history()) == original
        # The model sees the head: a turn after the rewrite is answered from the rewritten rows.
        await s.rewrite_transcript({"type": "edit_message_range", "range": {"start": 2, "end": 4}}, [],
                                   {"kind": "drop last turn"})
        assert len(raw(await s.history())) == 2
        await s.turn("third question")
        assert len(raw(await s.history())) == 4
        # Rows read from history round-trip through rewrite unchanged.
        rows = (await s.history()).messages
        again = await s.rewrite_transcript({"type": "message_range", "start": 0, "end": 4}, rows, {"kind": "noop"})
        assert again.commit["original_span_digest"] == again.commit["replacement_digest"]
        await raises("-32602", s.transcript_revision("r99"))
        await raises("-32602", s.restore_transcript_revision("r99", {"kind": "undo"}))
        await raises("-32602", s.rewrite_transcript({"type": "message_range", "start": 3, "end": 9}, [],
                                                    {"kind": "x"}))
        await raises("-32602", s.rewrite_transcript({"type": "message_range", "start": 0, "end": 0},
                                                    [{"role": "robot", "content": "?"}], {"kind": "x"}))
        # An archived session's revisions stay readable; it cannot be rewritten or restored.
        kept = raw(await s.history())
        heads = await s.transcript_revisions()
        await s.archive()
        await raises("-32001", c.rewrite_session_transcript(s.id, {"type": "message_range", "start": 0, "end": 1},
                                                            [], {"kind": "x"}))
        await raises("-32001", c.restore_session_transcript_revision(s.id, "r0", {"kind": "undo"}))
        assert raw(await c.read_session_history(s.id)) == kept
        assert (await c.list_session_transcript_revisions(s.id)).head_revision == heads.head_revision
        assert [m.raw for m in (await c.read_session_transcript_revision(s.id, "r0")).messages] == original


async def h4_system_prompt_update_reaches_the_vendor():
    """update_system_prompt: the next model call (on a fake Anthropic server) gets the new prompt."""
    vendor_log = Path(os.environ["VENDOR_LOG"])

    def last_system():
        body = json.loads(vendor_log.read_text().splitlines()[-1])["body"]
        return json.dumps(body.get("system"))

    vendor = json.loads(os.environ["VENDOR_ENV"])
    os.environ.update(vendor)  # the rkat-rpc this client spawns talks to the fake Anthropic server
    try:
        await _h4(last_system, vendor_log)
    finally:
        for name in vendor:
            os.environ.pop(name, None)


def strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


async def _h4(last_system, vendor_log):
    async with proxied("h4") as c:
        s = await c.create_session("hello", model="claude-sonnet-4-6", system_prompt="You are terse.")
        assert "You are terse." in last_system()
        first = await s.update_system_prompt("main", "You are verbose.", target_message_index=0)
        assert (first.status, first.version, first.message_index) == ("applied", 1, 0)
        assert first.transcript_revision == "r1" and first.commit["revision"] == "r1"
        await s.turn("again")
        assert "You are verbose." in last_system() and "terse" not in last_system(), last_system()
        rows = (await s.history()).messages
        assert rows[0].role == "system" and rows[0].prompt_version.key == "main" and rows[0].prompt_version.version == 1
        same = await s.update_system_prompt("main", "You are verbose.")
        assert (same.status, same.version, same.commit) == ("duplicate", 1, None)
        second = await s.update_system_prompt("main", "You are a pirate.", expected_version=1)
        assert (second.status, second.version) == ("applied", 2)
        await raises("-32602", s.update_system_prompt("main", "stale", expected_version=1))
        await s.turn("and again")
        assert "pirate" in last_system() and "verbose" not in last_system(), last_system()
        extra = await s.update_system_prompt("style", "Use short sentences.")
        assert extra.version == 1
        await s.turn("once more")
        assert "pirate" in last_system() and "short sentences" in last_system(), last_system()
        listing = await s.transcript_revisions()
        assert [e.reason for e in listing.entries] == ["system_prompt_update"] * 3
        # The model sees the head revision: an edited question is what the vendor receives next.
        rows = (await s.history()).messages
        index = next(i for i, m in enumerate(rows) if m.role == "user" and m.content == "again")
        await s.rewrite_transcript({"type": "message_range", "start": index, "end": index + 1},
                                   [{"role": "user", "content": "EDITED QUESTION"}], {"kind": "edit"})
        await s.turn("after the edit")
        body = json.loads(vendor_log.read_text().splitlines()[-1])["body"]
        texts = list(strings(body["messages"]))
        assert "EDITED QUESTION" in texts and "again" not in texts and "after the edit" in texts, texts


async def h5_instruction_activations():
    """activate_instruction appends a durable row the model sees; retries are duplicates; CAS on the key."""
    async with proxied("h5") as c:
        s = await c.create_session("hello")
        body = "Always answer with a haiku."
        revision = {"namespace": "app", "key": "style", "revision_id": "v1",
                    "content_sha256": hashlib.sha256(body.encode()).hexdigest()}
        request = {"revision": revision, "activation_id": "act-1", "expectation": {"kind": "absent"}, "body": body}
        receipt = await s.activate_instruction(request)
        assert receipt.disposition == "applied" and receipt.record.identity.activation_id == "act-1"
        assert receipt.record.identity.origin_session_id == s.id and receipt.record.activation_ordinal == 1
        again = await s.activate_instruction(request)
        assert again.disposition == "duplicate" and again.record.projection_witness.message_index == \
            receipt.record.projection_witness.message_index
        seen = await s.turn("mock:system")
        assert "haiku" in seen.text, seen.text
        await raises("-32602", s.activate_instruction({**request, "activation_id": "act-2"}))  # not absent now
        body2 = "Always answer in French."
        # The SDK's typed request (dataclasses) works as well as a dict.
        second = await s.activate_instruction(InstructionActivationRequest(
            revision=InstructionRevisionRef(namespace="app", key="style", revision_id="v2",
                                            content_sha256=hashlib.sha256(body2.encode()).hexdigest()),
            activation_id="act-2", expectation=InstructionActivationEffective(activation_id="act-1"), body=body2))
        assert second.record.identity.supersedes == "act-1" and second.record.activation_ordinal == 2
        page = await s.instruction_activations(namespace="app", key="style")
        assert [r.identity.activation_id for r in page.records] == ["act-1", "act-2"]
        assert page.key_state.next_expectation.activation_id == "act-2"
        assert page.key_state.requires_explicit_child_activation is False
        fork = await s.fork_at(len((await s.history()).messages), inherited_instructions="reactivate_inherited")
        assert fork.reactivated_instruction_count == 1
        await raises("-32602", s.fork_at(len((await s.history()).messages), inherited_instructions="refuse"))
        await raises("-32602", s.activate_instruction({**request, "activation_id": "bad", "body": "other",
                                                       "expectation": {"kind": "effective",
                                                                       "activation_id": "act-2"}}))


async def h6_export_atif():
    """export_atif: an ATIF trajectory with user and agent steps, tool calls with their results, usage."""
    async with proxied("h6") as c:
        s = await c.create_session("what time is it? tool:datetime", system_prompt="Be exact.")
        await s.turn("thanks")
        doc = await c.export_session_atif(s.id, agent_name="eval-agent", agent_version="9.9")
        assert doc["schema_version"].startswith("ATIF-v") and doc["session_id"] == s.id
        assert doc["agent"]["name"] == "eval-agent" and doc["agent"]["version"] == "9.9"
        sources = [step["source"] for step in doc["steps"]]
        assert sources[0] == "system" and "user" in sources and "agent" in sources, sources
        assert [step["step_id"] for step in doc["steps"]] == list(range(1, len(sources) + 1))
        calls = [step for step in doc["steps"] if step.get("tool_calls")]
        assert calls and calls[0]["tool_calls"][0]["function_name"] == "datetime"
        assert calls[0]["observation"]["results"][0]["source_call_id"] == calls[0]["tool_calls"][0]["tool_call_id"]
        assert all(step["timestamp"] for step in doc["steps"])
        assert doc["final_metrics"]["total_completion_tokens"] > 0
        await raises("-32001", c.export_session_atif("01936f8a-7b2c-7000-8000-000000000099"))


async def h7_other_processes_see_forks_and_rewrites():
    """A fork and a rewrite made through one rkat-rpc are seen at once by another on the same realm."""
    a, b = client(), client()
    await a.connect(**realm("h7"))
    await b.connect(**realm("h7"))
    try:
        s = await two_turns(a)
        before = raw(await b.read_session_history(s.id))
        fork = await b.fork_session_at(s.id, 2)
        assert raw(await a.read_session_history(fork.session_id)) == before[:2]
        await a.rewrite_session_transcript(s.id, {"type": "message_range", "start": 2, "end": 4}, [],
                                           {"kind": "prune"})
        assert len(raw(await b.read_session_history(s.id))) == 2
        listing = await b.list_session_transcript_revisions(s.id)
        assert listing.head_revision == "r1"
        # b's turn sees a's rewrite: the transcript it continues has 2 rows before it.
        await turn_on(b, s.id, "continue from the pruned point")
        assert len(raw(await a.read_session_history(s.id))) == 4
        restored = await b.restore_session_transcript_revision(s.id, "r0", {"kind": "undo"})
        assert restored.message_count == 4 and raw(await a.read_session_history(s.id)) == before
    finally:
        await a.close()
        await b.close()


async def h8_busy_source_and_wire_log():
    """A running source is SESSION_BUSY naming the run; every result the server wrote passes the SDK's parsers."""
    async with client() as c:
        s = await c.create_session("hello")
        turn = asyncio.create_task(s.turn("slow", provider_params={"reply_words": 200, "token_delay_ms": 10}))
        await asyncio.sleep(0.3)
        busy = await raises("-32002", s.fork_at(1))
        assert "busy" in str(busy).lower()
        await raises("-32002", s.rewrite_transcript({"type": "message_range", "start": 0, "end": 1}, [],
                                                    {"kind": "x"}))
        await raises("-32002", s.update_system_prompt("main", "x"))
        await turn
        fork = await s.fork_at(1)
        assert fork.message_count == 1
    methods = set()  # the history methods the server answered with a result, in the scenarios above
    for log in LOGS:
        asked = {}
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if "to_server" in entry and "method" in entry["to_server"]:
                asked[entry["to_server"].get("id")] = entry["to_server"]["method"]
            elif "to_client" in entry and "result" in entry["to_client"]:
                methods.add(asked.get(entry["to_client"].get("id")))
    expected = {"session/fork_at", "session/fork_replace", "session/rewrite_transcript",
                "session/transcript_revisions", "session/transcript_revision", "session/restore_transcript_revision",
                "session/update_system_prompt", "session/activate_instruction", "session/instruction_activations",
                "session/export_atif"}
    assert expected <= methods, expected - methods


SCENARIOS = [h1_fork_at_is_exactly_the_prefix, h2_fork_replace, h3_rewrite_then_restore_gives_back_the_rows,
             h4_system_prompt_update_reaches_the_vendor, h5_instruction_activations, h6_export_atif,
             h7_other_processes_see_forks_and_rewrites, h8_busy_source_and_wire_log]


if __name__ == "__main__":
    run_scenarios(SCENARIOS)
