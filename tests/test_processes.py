"""Real OS processes on one realm: SIGKILL mid-turn, and racing config writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import trio

from meerkat.transcript import BlockAssistantMessage, UserMessage

from helpers import running_service

CHILD_TURNS = textwrap.dedent(
    """
    import sys, trio
    from actors import open_service

    async def main(root, backend):
        async with open_service("crash-realm", state_root=root, backend=backend) as svc:
            first = await svc.create_session("committed one")
            await svc.start_turn(first.session_id, "committed two")
            print("SESSION", first.session_id, flush=True)
            stream = await svc.start_turn_streaming(
                first.session_id, "in flight", provider_params={"reply_words": 5000, "token_delay_ms": 5})
            async for event in stream:
                if event.type == "text_delta":
                    print("STREAMING", flush=True)
                    await trio.sleep_forever()

    trio.run(main, sys.argv[1], sys.argv[2])
    """
)

CHILD_PATCHES = textwrap.dedent(
    """
    import sys, trio
    from actors import open_service
    from meerkat.errors import ConfigGenerationConflict

    async def main(root, tag):
        conflicts = 0
        async with open_service("race-realm", state_root=root, backend="sqlite") as svc:
            for i in range(100):
                while True:
                    current = (await svc.get_config()).generation
                    try:
                        await svc.patch_config({"agent": {"provider_params": {f"{tag}_{i}": i}}},
                                               expected_generation=current)
                        break
                    except ConfigGenerationConflict:
                        conflicts += 1
        print("CONFLICTS", conflicts, flush=True)

    trio.run(main, sys.argv[1], sys.argv[2])
    """
)


def _spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("backend", ["sqlite", "jsonl"])
async def test_sigkill_mid_turn_keeps_committed_runs_and_closes_the_open_one(tmp_path, backend):
    child = _spawn(CHILD_TURNS, str(tmp_path), backend)
    try:
        with trio.fail_after(30):
            session_line = await trio.to_thread.run_sync(child.stdout.readline)
            assert session_line.startswith("SESSION"), child.stderr.read()
            session_id = session_line.split()[1]
            assert (await trio.to_thread.run_sync(child.stdout.readline)).startswith("STREAMING")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()
    async with running_service(tmp_path, backend, realm_id="crash-realm") as service:
        view = await service.read_session(session_id)
        assert view.is_active is False
        history = await service.read_history(session_id)
        rows = history.messages
        assert [type(r) for r in rows] == [UserMessage, BlockAssistantMessage] * 3
        assert [r.content for r in rows if isinstance(r, UserMessage)] == ["committed one", "committed two",
                                                                            "in flight"]
        assert rows[1].blocks[0].data["text"] == "Mock reply to: committed one"
        assert rows[3].blocks[0].data["text"] == "Mock reply to: committed two"
        assert rows[5].stop_reason == "cancelled" and rows[5].blocks == []
        assert history.message_count == 6
        assert await service.supervisor.store_call(service.supervisor.store.open_runs) == []
        stream = await service.start_turn_streaming(session_id, "still usable")
        seqs = [e.seq async for e in stream]
        after = await stream.result()
        assert after.text == "Mock reply to: still usable"
        # the killed run's events were numbered but never committed: numbering jumps past them
        assert min(seqs) > 1_000_000


async def test_two_processes_racing_config_patches_lose_no_update(tmp_path):
    children = [_spawn(CHILD_PATCHES, str(tmp_path), tag) for tag in ("a", "b")]
    outputs = []
    for child in children:
        out, err = await trio.to_thread.run_sync(child.communicate)
        assert child.returncode == 0, err
        outputs.append(out)
    async with running_service(tmp_path, "sqlite", realm_id="race-realm") as service:
        config = await service.get_config()
    assert config.generation == 200
    params = config.config["agent"]["provider_params"]
    assert params == {f"{tag}_{i}": i for tag in ("a", "b") for i in range(100)}
