"""Long sessions cost what short ones cost: turn time and event-loop stall by transcript size.

Sessions of 20, 200, 1,000 and 5,000 transcript rows (a realistic mix: prompts,
tool calls, tool results, answers of a few dozen words) are seeded into a
sqlite realm; then, per provider (mock, openai, self_hosted, anthropic, gemini),
each real provider client talking to a fake vendor server in its own process
(no latency), the script runs:

* ``cold``: the first turn after the session is loaded (the actor reads the
  transcript and converts it to the vendor's wire form): time and stall;
* ``turn``: the median of the next ``--turns`` turns (``SessionService.start_turn``),
  taken round the sizes one turn at a time so load from elsewhere hits all alike;
* ``stall``: the longest time a 1 ms ticker task of the same process could not
  run during those turns (the event loop is shared by every session);
* ``bare1`` / ``bareN``: the vendor's SDK streaming call on its own, with one
  message and with the same history (``create(**params)``: the SDK converts
  the whole conversation on every call), in the same run.

Targets (issue 14): turn at 1,000 rows <= 1.3x the turn at 20 rows, per
provider; stall <= the mock provider's stall + 3 ms at every size, 5,000 rows
too. Then ``--concurrent`` long sessions (default 20, 1,000 rows, openai) take
turns back to back while a short session takes turns, every reply 100 tokens
streamed at 200 events/s (a fast vendor's pace, from a second fake server;
``--concurrent-words``): the short session's
deltas must not arrive more than 2x slower than with the long sessions idle
(mean gap between its deltas, and its turn time).

    .venv/bin/python bench/long_sessions.py [--sizes 20,200,1000,5000] [--turns 15]
                                           [--providers mock,openai,...] [--concurrent 20]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import header, now, verdict

import trio

from actors import open_service
from meerkat.agent.tools import Tool, ToolOutput
from meerkat.ids import new_uuid7
from meerkat.providers.base import ProviderRequest, ToolSpec
from meerkat.store import SessionRecord
from meerkat.transcript import (
    BlockAssistantMessage,
    Message,
    SystemMessage,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
    now_ms,
    now_rfc3339,
    text_block,
    tool_use_block,
)

KEY = "bench-key"
SYSTEM = "You are a careful assistant. Use the tools when they help. Answer briefly."
PROMPT = "Go on with the next step, please."
PROVIDERS = {"mock": "mock", "openai": "gpt-5.5", "self_hosted": "bench-local", "anthropic": "claude-sonnet-4-6",
             "gemini": "gemini-3-flash-preview"}
TURN_RATIO = 1.3
STALL_MARGIN_MS = 3.0
CONCURRENT_RATIO = 2.0
SCHEMA = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}
WORDS = ("the session keeps every row of the conversation so that each call sends the whole history again "
         "which is why its cost must not grow with the rows already sent").split()


def _text(words: int, seed: int) -> str:
    return " ".join(WORDS[(seed + i) % len(WORDS)] for i in range(words))


def seeded_rows(count: int) -> list[Message]:
    """``count`` transcript rows: prompt, tool call, tool result, answer, repeated."""
    rows: list[Message] = []
    at = now_rfc3339()
    index = 0
    while len(rows) < count:
        call_id = f"call_{index}"
        rows.append(UserMessage(content=f"Step {index}: " + _text(30, index), created_at=at))
        rows.append(BlockAssistantMessage(blocks=[text_block(_text(8, index)),
                                                  tool_use_block(call_id, "add", {"a": index, "b": 2})],
                                          stop_reason="tool_use", created_at=at))
        rows.append(ToolResultsMessage(results=[ToolResult(tool_use_id=call_id, content=f"sum={index + 2}")],
                                       created_at=at))
        rows.append(BlockAssistantMessage(blocks=[text_block(_text(50, index))], stop_reason="end_turn",
                                          created_at=at))
        index += 1
    rows = rows[:count]
    while rows and not (isinstance(rows[-1], BlockAssistantMessage) and rows[-1].stop_reason == "end_turn"):
        rows.pop()  # a session at rest ends with an answer
    return rows


def _config(url: str) -> dict[str, Any]:
    return {"providers": {"anthropic": {"base_url": url}, "openai": {"base_url": f"{url}/v1"},
                          "gemini": {"base_url": url}},
            "self_hosted": {"servers": {"fake": {"base_url": url}},
                            "models": {"bench-local": {"server": "fake", "remote_model": "bench-local"}}}}


async def seed(service: Any, provider: str, rows: list[Message]) -> str:
    """A session of ``rows`` written straight into the realm's store (not yet loaded by an actor)."""
    sup = service.supervisor
    stamp = now_ms()
    record = SessionRecord(session_id=new_uuid7(), created_at_ms=stamp, updated_at_ms=stamp,
                           model=PROVIDERS[provider], provider=provider, system_prompt=SYSTEM,
                           instance_id=sup.realm.instance_id, message_count=len(rows) + 1)
    await sup.store_call(sup.store.create_session, record, [SystemMessage(content=SYSTEM, created_at=now_rfc3339()),
                                                            *rows])
    return record.session_id


class Ticker:
    """A task that wants to run every millisecond; records the longest it had to wait beyond that.

    ``worst`` is wall time (what another session feels: it includes the OS
    running other processes on a busy machine); ``worst_cpu`` is the CPU time
    the event-loop thread spent between two wake-ups (only this process's own
    synchronous work: the part a change here can remove).
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_cpu = 0.0

    async def run(self) -> None:
        last, last_cpu = now(), time.thread_time()
        while True:
            await trio.sleep(0.001)
            current, cpu = now(), time.thread_time()
            self.worst = max(self.worst, current - last - 0.001)
            self.worst_cpu = max(self.worst_cpu, cpu - last_cpu)
            last, last_cpu = current, cpu

    async def measure(self, fn: Callable[[], Awaitable[Any]]) -> tuple[float, float, float]:
        """(seconds ``fn`` took, longest ticker wait during it, longest CPU block during it), in seconds."""
        await trio.sleep(0.002)
        self.worst = self.worst_cpu = 0.0
        start = now()
        await fn()
        elapsed = now() - start
        await trio.sleep(0.002)  # a stall at the very end shows on the ticker's next wake-up
        return elapsed, self.worst, self.worst_cpu


class Bare:
    """The vendor SDK's own streaming call, with one message or with a whole history."""

    def __init__(self, url: str) -> None:
        import anthropic
        import httpx2
        import openai

        self.anthropic = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=0)
        self.openai = openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
        self.http = httpx2.AsyncClient(base_url=url, headers={"x-goog-api-key": KEY})

    async def aclose(self) -> None:
        await self.anthropic.close()
        await self.openai.close()
        await self.http.aclose()

    async def call(self, provider: str, rows: list[Message]) -> None:
        """One call with ``rows`` (plus a prompt), converted the plain way and handed to the SDK."""
        import json

        from meerkat.providers.anthropic import anthropic_request
        from meerkat.providers.gemini import gemini_request
        from meerkat.providers.openai_responses import responses_request
        from meerkat.providers.self_hosted import chat_request

        request = ProviderRequest(model=PROVIDERS[provider], system_prompt=SYSTEM, tools=[_TOOL_SPEC],
                                  messages=[*rows, UserMessage(content=PROMPT, created_at=now_rfc3339())])
        if provider == "openai":
            stream: Any = await self.openai.responses.create(**responses_request(request), stream=True)
        elif provider == "self_hosted":
            stream = await self.openai.chat.completions.create(**chat_request(request, "bench-local"), stream=True)
        elif provider == "anthropic":
            stream = await self.anthropic.messages.create(**anthropic_request(request), stream=True)
        else:
            async with self.http.stream("POST", f"/v1beta/models/{request.model}:streamGenerateContent",
                                        params={"alt": "sse"}, json=gemini_request(request)) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("data:"):
                        json.loads(line[5:])
            return
        async with stream:
            async for _ in stream:
                pass


_TOOL_SPEC = ToolSpec("add", "Add two numbers", SCHEMA)


async def _add(args: dict[str, Any]) -> ToolOutput:
    return ToolOutput(f"sum={args.get('a', 0) + args.get('b', 0)}")


def _start_server(*extra: str) -> tuple[subprocess.Popen[str], str]:
    reply = [] if "--reply" in extra else ["--reply", _text(20, 3)]
    server = subprocess.Popen([sys.executable, "-m", "meerkat.testing", *reply, *extra],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def _ms(seconds: float) -> float:
    return seconds * 1000.0


async def sizes_part(service: Any, bare: Bare, ticker: Ticker, sizes: list[int], turns: int,
                     providers: list[str]) -> list[str]:
    rows_by_size = {size: seeded_rows(size) for size in sizes}
    figures: dict[tuple[str, int], dict[str, float]] = {}
    print(f"{'provider':<12} {'rows':>5} {'cold ms':>8} {'stall':>6} {'cpu':>5} {'turn ms':>8} {'stall':>6} "
          f"{'cpu':>5} {'bare1 ms':>8} {'bareN ms':>9} {'stall':>7}   (stall: longest ticker wait, "
          f"cpu: longest event-loop CPU block, ms)")
    for provider in providers:
        # Every size's session is loaded (its cold turn), then warm turns go round the sizes,
        # one turn each per round, so a burst of load from elsewhere hits all sizes alike.
        sessions: dict[int, str] = {}
        cold: dict[int, tuple[float, float, float]] = {}
        for size in sizes:
            session_id = sessions[size] = await seed(service, provider, rows_by_size[size])
            cold[size] = await ticker.measure(lambda: service.start_turn(session_id, PROMPT))
        warm: dict[int, list[tuple[float, float, float]]] = {size: [] for size in sizes}
        for _ in range(turns):
            for size in sizes:
                session_id = sessions[size]
                warm[size].append(await ticker.measure(lambda: service.start_turn(session_id, PROMPT)))
        for size in sizes:
            rows = rows_by_size[size]
            row = {"cold": _ms(cold[size][0]), "cold_stall": _ms(cold[size][1]), "cold_cpu": _ms(cold[size][2]),
                   "turn": _ms(statistics.median(w[0] for w in warm[size])),
                   "stall": _ms(max(w[1] for w in warm[size])), "cpu": _ms(max(w[2] for w in warm[size]))}
            if provider != "mock":
                one = [(await ticker.measure(lambda: bare.call(provider, [])))[0] for _ in range(turns)]
                history = [await ticker.measure(lambda: bare.call(provider, rows)) for _ in range(min(turns, 3))]
                row.update(bare1=_ms(statistics.median(one)), bareN=_ms(statistics.median(h[0] for h in history)),
                           bareN_stall=_ms(max(h[1] for h in history)))
            figures[(provider, size)] = row
            nan = float("nan")
            print(f"{provider:<12} {size:>5} {row['cold']:8.2f} {row['cold_stall']:6.2f} {row['cold_cpu']:5.2f} "
                  f"{row['turn']:8.2f} {row['stall']:6.2f} {row['cpu']:5.2f} {row.get('bare1', nan):8.2f} "
                  f"{row.get('bareN', nan):9.2f} {row.get('bareN_stall', nan):7.2f}", flush=True)
    lines = []
    small, large = min(sizes), (1000 if 1000 in sizes else max(sizes))
    for provider in providers:
        ratio = figures[(provider, large)]["turn"] / figures[(provider, small)]["turn"]
        lines.append(f"TARGET {provider} turn at {large} rows <= {TURN_RATIO}x turn at {small} rows: {ratio:.2f}x  "
                     f"{verdict(ratio <= TURN_RATIO)}")
    if "mock" in providers:
        for provider in providers:
            if provider == "mock":
                continue
            for kind, label in (("stall", "stall"), ("cpu", "CPU block")):
                worst = max((max(figures[(provider, s)][kind] - figures[("mock", s)][kind],
                                 figures[(provider, s)][f"cold_{kind}"] - figures[("mock", s)][f"cold_{kind}"]), s)
                            for s in sizes)
                lines.append(f"TARGET {provider} {label} <= mock's + {STALL_MARGIN_MS:g} ms at every size (cold "
                             f"turns too): worst +{worst[0]:.2f} ms ({worst[1]} rows)  "
                             f"{verdict(worst[0] <= STALL_MARGIN_MS)}")
    return lines


async def parse_part(url: str, rounds: int) -> list[str]:
    """Per streamed delta: the SDK's typed events against the plain JSON the providers read."""
    import anthropic
    import openai
    from anthropic.types import RawMessageStreamEvent
    from openai.types.chat import ChatCompletionChunk
    from openai.types.responses import ResponseStreamEvent

    oa = openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
    an = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=0)
    cases = {
        "openai": (oa, openai.AsyncStream, "/responses", {"model": "gpt-5.5", "input": "hi", "stream": True},
                   ResponseStreamEvent),
        "self_hosted": (oa, openai.AsyncStream, "/chat/completions",
                        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                        ChatCompletionChunk),
        "anthropic": (an, anthropic.AsyncStream, "/v1/messages",
                      {"model": "claude-sonnet-4-6", "max_tokens": 9000, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}, RawMessageStreamEvent),
    }
    lines = []
    try:
        for provider, (client, stream_cls, path, body, typed) in cases.items():
            timings: dict[str, list[float]] = {"typed": [], "plain": []}
            for _ in range(rounds):
                for kind, cast in (("typed", typed), ("plain", object)):
                    start, cpu = now(), time.thread_time()
                    stream = await client.post(path, body=body, cast_to=cast, stream=True,
                                               stream_cls=stream_cls[cast])
                    events = 0
                    async with stream:
                        async for _ in stream:
                            events += 1
                    timings[kind].append((time.thread_time() - cpu) / events)
            typed_us, plain_us = (statistics.median(timings[k]) * 1e6 for k in ("typed", "plain"))
            print(f"{provider:<12} per event ({events} events): SDK typed {typed_us:6.1f} us CPU, plain JSON "
                  f"{plain_us:6.1f} us CPU")
            lines.append(f"RATIO {provider} CPU per streamed event, plain JSON / SDK typed: "
                         f"{plain_us / typed_us:.2f}x ({plain_us:.1f} vs {typed_us:.1f} us)")
    finally:
        await oa.close()
        await an.close()
    return lines


async def run(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    providers = args.providers.split(",")
    header(f"long_sessions: turn time and event-loop stall by transcript size {sizes}, {args.turns} turns each")
    server, url = _start_server()
    paced, paced_url = _start_server("--tokens-per-second", "200", "--reply", _text(args.concurrent_words, 5))
    # The short session has a vendor of its own: 21 streams from one fake process would time the fake.
    paced_short, paced_short_url = _start_server("--tokens-per-second", "200", "--reply",
                                                 _text(args.concurrent_words, 5))
    wordy, wordy_url = _start_server("--reply", _text(1000, 1))
    print(f"fake servers {url} (no latency), {paced_url} (200 events/s, {args.concurrent_words}-token replies), "
          f"{wordy_url} (1,000-token replies)")
    for variable in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        os.environ[variable] = KEY
    lines: list[str] = []
    bare = Bare(url)
    ticker = Ticker()
    try:
        with tempfile.TemporaryDirectory() as root:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker.run)
                async with open_service("bench", state_root=root, backend="sqlite") as service:
                    await service.patch_config(_config(url))
                    service.register_tool(Tool(_TOOL_SPEC, _add))
                    for provider in providers:
                        if provider != "mock":  # imports and first connections out of the figures
                            await bare.call(provider, [])
                            warm = await seed(service, provider, seeded_rows(4))
                            await service.start_turn(warm, PROMPT)
                    lines += await sizes_part(service, bare, ticker, sizes, args.turns, providers)
                    start = now()
                    gc.collect()
                    print(f"a full GC collection with these sessions loaded: {_ms(now() - start):.1f} ms "
                          f"({len(gc.get_objects()):,} tracked objects)")
                if args.concurrent:
                    with tempfile.TemporaryDirectory() as root2:
                        async with open_service("bench2", state_root=root2, backend="sqlite") as service:
                            await service.patch_config(_config(url))
                            service.register_tool(Tool(_TOOL_SPEC, _add))
                            lines += await concurrent_part(service, paced_url, paced_short_url, args.concurrent,
                                                           args.concurrent_rows)
                if args.parse:
                    lines += await parse_part(wordy_url, 5)
                nursery.cancel_scope.cancel()
    finally:
        await bare.aclose()
        for process in (server, paced, paced_short, wordy):
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
    for line in lines:
        print(line)


async def concurrent_part(service: Any, paced_url: str, short_url: str, count: int, size: int) -> list[str]:
    """A short session (self_hosted, its own fake vendor) streams while ``count`` long openai sessions take
    turns back to back, all at vendor pace."""
    await service.patch_config({"providers": {"openai": {"base_url": f"{paced_url}/v1"}},
                                "self_hosted": {"servers": {"fake": {"base_url": short_url}}}})
    short = (await service.create_session("hi", model=PROVIDERS["self_hosted"], provider="self_hosted")).session_id
    rows = seeded_rows(size)
    longs = [await seed(service, "openai", rows) for _ in range(count)]

    async def short_turn() -> tuple[float, float]:
        gaps: list[float] = []
        stream = await service.start_turn_streaming(short, PROMPT)
        start = last = now()
        async for event in stream:
            if event.type == "text_delta":
                current = now()
                gaps.append(current - last)
                last = current
        await stream.result()
        return statistics.mean(gaps), now() - start

    async def measure() -> tuple[float, float]:
        samples = [await short_turn() for _ in range(5)]
        return statistics.median(g for g, _ in samples), statistics.median(t for _, t in samples)

    gap0, turn0 = await measure()
    stop = trio.Event()
    long_turns = 0

    async def hammer(session_id: str) -> None:
        nonlocal long_turns
        while not stop.is_set():
            await service.start_turn(session_id, PROMPT)
            long_turns += 1

    async with trio.open_nursery() as nursery:
        for session_id in longs:
            nursery.start_soon(hammer, session_id)
        while long_turns < count:  # every long session loaded (cold) and turning
            await trio.sleep(0.05)
        gap1, turn1 = await measure()
        stop.set()
    print(f"short session alone: mean gap between deltas {_ms(gap0):.2f} ms, turn {_ms(turn0):.1f} ms")
    print(f"with {count} openai sessions of {size} rows taking turns back to back ({long_turns} turns): "
          f"mean gap between deltas {_ms(gap1):.2f} ms, turn {_ms(turn1):.1f} ms")
    ratio = max(gap1 / gap0, turn1 / turn0)
    return [f"TARGET short session's deltas with {count} long sessions busy <= {CONCURRENT_RATIO}x slower: "
            f"{ratio:.2f}x  {verdict(ratio <= CONCURRENT_RATIO)}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20,200,1000,5000", help="transcript rows (default 20,200,1000,5000)")
    parser.add_argument("--turns", type=int, default=15, help="warm turns per provider and size (default 15)")
    parser.add_argument("--providers", default=",".join(PROVIDERS), help="comma-separated (default: all)")
    parser.add_argument("--concurrent", type=int, default=20, help="long sessions busy at once (0: skip)")
    parser.add_argument("--parse", type=int, default=1, help="1: measure per-event parsing (0: skip)")
    parser.add_argument("--concurrent-rows", type=int, default=1000, help="rows of each long session")
    parser.add_argument("--concurrent-words", type=int, default=100,
                        help="tokens of each reply in the concurrent part (default 100)")
    args = parser.parse_args()
    unknown = set(args.providers.split(",")) - set(PROVIDERS)
    if unknown:
        parser.error(f"unknown provider(s): {', '.join(sorted(unknown))}")
    trio.run(run, args)


if __name__ == "__main__":
    main()
