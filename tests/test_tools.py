"""Tools in the turn loop: concurrency, failures fed back to the model, unknown tools."""

from __future__ import annotations

import json

import pytest
import trio

from meerkat.agent import Tool, ToolOutput
from meerkat.errors import AgentError
from meerkat.providers import ToolSpec

from helpers import running_service


def _tool(name, handler, timeout=None):
    return Tool(ToolSpec(name=name, description=f"test tool {name}", input_schema={"type": "object"}),
                handler, timeout_secs=timeout)


async def test_tool_calls_of_one_round_run_concurrently(tmp_path):
    active = []
    peak = []

    async def slow(args):
        active.append(1)
        peak.append(len(active))
        await trio.sleep(0.2)
        active.pop()
        return ToolOutput(f"slept {args['n']}")

    async with running_service(tmp_path, "memory") as service:
        service.register_tool(_tool("nap", slow))
        result = await service.create_session('tool:nap{"n": 1} tool:nap{"n": 2} tool:nap{"n": 3}')
    assert max(peak) == 3  # all three were running at the same moment
    assert result.tool_calls == 3
    assert result.text == "Tool nap returned: slept 1 Tool nap returned: slept 2 Tool nap returned: slept 3"


async def test_failing_and_timed_out_tools_become_error_results(tmp_path):
    async def broken(args):
        raise RuntimeError("kaput")

    async def stuck(args):
        await trio.sleep_forever()

    async with running_service(tmp_path, "memory") as service:
        service.register_tool(_tool("broken", broken))
        service.register_tool(_tool("stuck", stuck, timeout=0.05))
        stream = await service.create_session_streaming("tool:broken tool:stuck")
        events = [e async for e in stream]
        result = await stream.result()
        received = {e.payload.name: e.payload for e in events if e.type == "tool_result_received"}
        assert received["broken"].is_error and received["stuck"].is_error
        assert json.loads(received["broken"].content[0]["text"]) == {"error": "execution_failed",
                                                                     "message": "Tool error: kaput"}
        assert json.loads(received["stuck"].content[0]["text"])["error"] == "timeout"
        assert events[-1].type == "run_completed" and result.turns == 2  # the run went on
        history = await service.read_history(result.session_id)
        assert [r.is_error for r in history.messages[-2].results] == [True, True]


async def test_a_call_to_an_unknown_tool_fails_the_run(tmp_path):
    async with running_service(tmp_path, "memory") as service:
        stream = await service.create_session_streaming("tool:no_such_tool")
        events = [e async for e in stream]
        with pytest.raises(AgentError, match="no_such_tool"):
            await stream.result()
        assert events[-1].type == "run_failed"
        assert events[-1].payload.error_report.error_class == "tool"
        history = await service.read_history(stream.session_id)
        assert [type(m).__name__ for m in history.messages] == ["UserMessage"]
