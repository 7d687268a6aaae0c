"""A turn through the surfaces, with the openai provider, against the bare SDK call and the OpenAI Agents SDK.

One fake vendor server (``python -m meerkat.testing``, no latency, a 20-token
reply) serves everything, in its own process. Measured in the same run, in
rounds of five turns of each kind (so machine noise hits them alike), each the
median of the last half of ``--turns`` sequential turns of one session (so the
session is ``--turns`` turns long, as users' sessions are):

* ``bare``: ``AsyncOpenAI().responses.create(..., stream=True)`` with one
  message, every event read (the floor: the SDK and the HTTP round trip);
* ``rest``: ``POST /sessions/{id}/messages`` to ``rkat-rest`` (sqlite realm)
  from an httpx2 client with keep-alive;
* ``rpc``: a streamed turn through our Python SDK (``session.stream``) and
  ``rkat-rpc`` (sqlite realm), every event read;
* ``agents``: the OpenAI Agents SDK's streamed turn (``Runner.run_streamed``
  with an in-memory ``SQLiteSession`` and ``OpenAIResponsesModel``), every
  event read, in a side virtualenv (``--agents-venv``; made with
  ``pip install openai-agents`` when missing).

Targets (issue 14): rest <= 2.5x bare; rpc <= 2x bare and rpc <= agents.

    .venv/bin/python bench/surface_turns.py [--turns 80] [--agents-venv /tmp/rkat-bench-agents]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import header, now, verdict

import trio

KEY = "bench-key"
MODEL = "gpt-5.5"
BIN = Path(sys.executable).parent
REST_RATIO, RPC_RATIO = 2.5, 2.0

AGENTS = r"""
import asyncio, json, sys, time
from agents import Agent, OpenAIResponsesModel, Runner, SQLiteSession, set_tracing_disabled
from openai import AsyncOpenAI

async def main(url, turns):
    set_tracing_disabled(True)
    client = AsyncOpenAI(api_key="bench-key", base_url=url + "/v1", max_retries=0)
    agent = Agent(name="bench", instructions="Be brief.", model=OpenAIResponsesModel(model="gpt-5.5", openai_client=client))
    session = SQLiteSession("bench")  # in memory
    times = []
    for _ in range(turns):
        start = time.perf_counter()
        result = Runner.run_streamed(agent, "Tell me something", session=session)
        async for _ in result.stream_events():
            pass
        times.append(time.perf_counter() - start)
    print(json.dumps(times))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _tail_median(samples: list[float]) -> float:
    return statistics.median(samples[len(samples) // 2:]) * 1000.0


async def interleaved(url: str, root: str, turns: int, env: dict[str, str]) -> dict[str, list[float]]:
    """bare, rest and rpc turns, in rounds of a few of each, so machine noise hits all three alike."""
    import httpx2
    import openai

    from meerkat import MeerkatClient

    proc = subprocess.Popen([str(BIN / "rkat-rest"), "--realm", "bench", "--realm-backend", "sqlite", "--state-root",
                             os.path.join(root, "rest"), "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
    client = await MeerkatClient().connect(realm_id="bench-rpc", realm_backend="sqlite",
                                           state_root=os.path.join(root, "rpc"))
    times: dict[str, list[float]] = {"bare": [], "rest": [], "rpc": []}
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"rkat-rest did not start: {line!r}")
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{int(line.rsplit(':', 1)[1])}", timeout=30) as http:
            reply = await http.post("/sessions", json={"prompt": "hi", "model": MODEL})
            reply.raise_for_status()
            rest_session = reply.json()["session_id"]
            session = await client.create_session("hi", model=MODEL)

            async def bare_turn() -> None:
                stream = await sdk.responses.create(model=MODEL, store=False, stream=True,
                                                    input=[{"role": "user", "content": "Tell me something"}])
                async with stream:
                    async for _ in stream:
                        pass

            async def rest_turn() -> None:
                reply = await http.post(f"/sessions/{rest_session}/messages", json={"prompt": "Tell me something"})
                reply.raise_for_status()

            async def rpc_turn() -> None:
                async with session.stream("Tell me something") as events:
                    async for _ in events:
                        pass

            runs = {"bare": bare_turn, "rest": rest_turn, "rpc": rpc_turn}
            for _ in range(0, turns, 5):
                for name, turn in runs.items():
                    for _ in range(5):
                        start = now()
                        await turn()
                        times[name].append(now() - start)
    finally:
        await client.close()
        await sdk.close()
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    return times


def agents(url: str, turns: int, venv: Path) -> list[float] | None:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv} with openai-agents (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "openai-agents"], capture_output=True,
                              text=True)
        if done.returncode != 0:
            print(f"could not install openai-agents: {done.stderr[-500:]}")
            return None
    out = subprocess.run([str(python), "-c", AGENTS, url, str(turns)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        print(f"the Agents SDK run failed: {out.stderr[-1500:]}")
        return None
    return [float(t) for t in json.loads(out.stdout.strip().splitlines()[-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=80, help="turns of each session (default 80)")
    parser.add_argument("--agents-venv", type=Path, default=Path(tempfile.gettempdir()) / "rkat-bench-agents",
                        help="virtualenv with openai-agents (made when missing)")
    args = parser.parse_args()
    header(f"surface_turns: sequential turns of an {args.turns}-turn session, openai provider, fake vendor")
    server = subprocess.Popen([sys.executable, "-m", "meerkat.testing", "--reply",
                               " ".join(f"word{i}" for i in range(20))], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        env = {**os.environ, "OPENAI_API_KEY": KEY, "RKAT_OPENAI_BASE_URL": f"{url}/v1"}
        os.environ.update(OPENAI_API_KEY=KEY, RKAT_OPENAI_BASE_URL=f"{url}/v1")
        with tempfile.TemporaryDirectory() as root:
            figures = {name: _tail_median(samples)
                       for name, samples in trio.run(interleaved, url, root, args.turns, env).items()}
        agents_times = agents(url, args.turns, args.agents_venv)
        if agents_times is not None:
            figures["agents"] = _tail_median(agents_times)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    labels = {"bare": "bare openai SDK call, one message", "rest": "rkat-rest POST /sessions/{id}/messages",
              "rpc": "our SDK + rkat-rpc, streamed turn", "agents": "OpenAI Agents SDK, streamed in-memory turn"}
    for name, value in figures.items():
        print(f"{labels[name]:<46} median {value:7.2f} ms")
    rest_ratio = figures["rest"] / figures["bare"]
    rpc_ratio = figures["rpc"] / figures["bare"]
    print(f"TARGET rest turn <= {REST_RATIO}x bare SDK call: {rest_ratio:.2f}x  {verdict(rest_ratio <= REST_RATIO)}")
    print(f"TARGET rpc streamed turn <= {RPC_RATIO}x bare SDK call: {rpc_ratio:.2f}x  "
          f"{verdict(rpc_ratio <= RPC_RATIO)}")
    if "agents" in figures:
        ratio = figures["rpc"] / figures["agents"]
        print(f"TARGET rpc streamed turn <= Agents SDK turn: {ratio:.2f}x  {verdict(ratio <= 1.0)}")


if __name__ == "__main__":
    main()
