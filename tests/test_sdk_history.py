"""Our Python SDK's history calls against a real ``rkat-rpc``: forks, revisions, the system prompt,
instructions and export, with typed results, under trio and asyncio."""

from __future__ import annotations

import hashlib
from functools import partial

import anyio
import pytest

from meerkat import MeerkatClient
from meerkat.client import ForkInfo, RevisionList, RevisionPage, RewriteInfo, SystemPromptInfo
from meerkat.errors import InvalidParams, SessionBusy, SessionNotFound
from meerkat.transcript import SystemMessage, UserMessage


@pytest.fixture(params=["trio", "asyncio"])
def run(request):
    return lambda fn, *args: anyio.run(fn, *args, backend=request.param)


async def history_scenario(root, backend) -> None:
    client = await MeerkatClient().connect(realm_id="sdk-history", realm_backend=backend, state_root=root)
    try:
        session = await client.create_session("first question", system_prompt="Be terse.")
        await session.turn("second question")
        original = (await session.history()).messages
        assert len(original) == 5

        fork = await client.fork_session(session.id, 3)
        assert isinstance(fork, ForkInfo) and fork.message_count == 3 and fork.source_session_id == session.id
        assert (await client.read_session_history(fork.session_id)).messages == original[:3]
        handle = await session.fork(3)
        result = await handle.turn("another second question")
        assert result.text == "Mock reply to: another second question"
        assert (await session.history()).messages == original
        replaced = await client.fork_session(session.id, 1, replacement={
            "type": "message", "message": {"role": "user", "content": "a better first question"}})
        rows = (await client.read_session_history(replaced.session_id)).messages
        assert rows[0] == original[0] and isinstance(rows[1], UserMessage)
        assert rows[1].content == "a better first question"
        whole = await client.fork_session(session.id)
        assert whole.message_count == 5

        done = await client.rewrite_transcript(session.id, 3, 5, [], reason="prune", actor="sdk")
        assert isinstance(done, RewriteInfo) and (done.revision, done.message_count) == ("r1", 3)
        listing = await session.revisions()
        assert isinstance(listing, RevisionList) and listing.head_revision == "r1"
        assert [(e.revision, e.reason, e.actor) for e in listing.entries] == [("r1", "prune", "sdk")]
        old = await client.transcript_revision(session.id, "r0")
        assert isinstance(old, RevisionPage) and old.messages == original
        restored = await session.restore("r0")
        assert restored.revision == "r2" and (await session.history()).messages == original
        with pytest.raises(InvalidParams):
            await client.rewrite_transcript(session.id, 0, 1, [], expected_parent_revision="r0")
        again = await client.rewrite_transcript(session.id, 0, 5, original, reason="noop")
        assert again.commit["original_span_digest"] == again.commit["replacement_digest"]

        prompt = await session.update_system_prompt("Be a pirate.", target_message_index=0)
        assert isinstance(prompt, SystemPromptInfo) and (prompt.status, prompt.version) == ("applied", 1)
        seen = await session.turn("mock:system")
        assert "pirate" in seen.text and "terse" not in seen.text
        first = (await session.history(limit=1)).messages[0]
        assert isinstance(first, SystemMessage) and first.prompt_version is not None
        assert first.prompt_version.key == "main"

        body = "Answer in haiku."
        receipt = await client.activate_instruction(session.id, {
            "revision": {"namespace": "app", "key": "style", "revision_id": "1",
                         "content_sha256": hashlib.sha256(body.encode()).hexdigest()},
            "activation_id": "a1", "expectation": {"kind": "absent"}, "body": body})
        assert receipt["disposition"] == "applied"
        assert "haiku" in (await session.turn("mock:system")).text
        page = await client.instruction_activations(session.id, namespace="app", key="style")
        assert [r["identity"]["activation_id"] for r in page["records"]] == ["a1"]

        atif = await session.export_atif(agent_name="sdk-test")
        assert atif["agent"]["name"] == "sdk-test" and atif["steps"][0]["source"] == "system"

        with pytest.raises(SessionNotFound):
            await client.fork_session("01936f8a-7b2c-7000-8000-000000000099", 0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(session.turn, "slow", provider_params={"reply_words": 200, "token_delay_ms": 5}))
            await anyio.sleep(0.3)
            with pytest.raises(SessionBusy):
                await session.fork(1)
    finally:
        await client.close()


@pytest.mark.parametrize("backend", ["sqlite", "jsonl", "memory"])
def test_history_calls(run, tmp_path, monkeypatch, backend):
    monkeypatch.setenv("RKAT_STATE_ROOT", str(tmp_path / "fresh"))
    run(history_scenario, tmp_path / "state", backend)


def test_history_doc_example_prints_what_the_doc_says(tmp_path):
    """The first example of docs/history.md runs as printed, without a key, and prints its shown output."""
    import subprocess
    import sys
    from pathlib import Path

    from rpc_process import child_env

    doc = (Path(__file__).resolve().parent.parent / "docs" / "history.md").read_text()
    parts = doc.split("```")
    code, shown = parts[1].removeprefix("python\n"), parts[3].removeprefix("\n")  # the example, then its output
    script = tmp_path / "example.py"
    script.write_text(code)
    env = child_env(tmp_path / "state", XDG_DATA_HOME=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown
