"""Host overhead per streamed turn through each real provider client, against a fake vendor server.

A fake provider server (``python -m meerkat.testing``) runs in its own process
on loopback and answers every call with the same reply of ``--words`` word
tokens, streamed in the vendor's format with no added latency. For each
provider (anthropic, openai, gemini, self_hosted) the script alternates, turn
by turn:

* ``host``: ``SessionService.start_turn`` on one session (memory backend): the
  actor hop, the turn loop, events, the provider adapter, the SDK client;
* ``bare``: the vendor's SDK streaming call on its own (``AsyncAnthropic``
  Messages, ``AsyncOpenAI`` Responses / chat completions; for Gemini, which has
  no SDK here, httpx2 streaming plus ``json.loads`` per event), iterating every
  event, with a hand-built conversation that grows exactly as the session's does.

Both reuse their HTTP connection. The figure is the ratio of the medians,
host / bare, per provider; target <= 1.2x.

    .venv/bin/python bench/provider_overhead.py [--turns N] [--words W]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Awaitable, Callable

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import fmt_summary, header, now, summary_ms, verdict

import anthropic
import httpx2
import openai
import trio

from actors import open_service
from meerkat.testing.script import tokens

TARGET_RATIO = 1.2
KEY = "bench-key"
PROMPT = "Tell me something"
PROVIDERS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-5.5", "gemini": "gemini-3-flash-preview",
             "self_hosted": "bench-local"}


def _config(url: str) -> dict[str, Any]:
    return {"providers": {"anthropic": {"base_url": url}, "openai": {"base_url": f"{url}/v1"},
                          "gemini": {"base_url": url}},
            "self_hosted": {"servers": {"fake": {"base_url": url}},
                            "models": {"bench-local": {"server": "fake", "remote_model": "bench-local"}}}}


class Bare:
    """The vendor SDK streaming call alone, with a conversation growing as the session's does."""

    def __init__(self, url: str, reply: str) -> None:
        self.url, self.reply = url, reply
        self.anthropic = anthropic.AsyncAnthropic(api_key=KEY, base_url=url, max_retries=0)
        self.openai = openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
        self.http = httpx2.AsyncClient(base_url=url, headers={"x-goog-api-key": KEY})
        self.history: dict[str, list[tuple[str, str]]] = {p: [] for p in PROVIDERS}

    async def aclose(self) -> None:
        await self.anthropic.close()
        await self.openai.close()
        await self.http.aclose()

    def _turns(self, provider: str) -> list[tuple[str, str]]:
        turns = self.history[provider]
        turns.append(("user", PROMPT))
        return turns

    async def call(self, provider: str) -> int:
        """One streamed call; returns the number of events read."""
        turns = self._turns(provider)
        events = 0
        if provider == "anthropic":
            stream = await self.anthropic.messages.create(
                model=PROVIDERS[provider], max_tokens=16384, stream=True,
                messages=[{"role": r, "content": t} for r, t in turns])
            async with stream:
                async for _ in stream:
                    events += 1
        elif provider == "openai":
            stream = await self.openai.responses.create(
                model=PROVIDERS[provider], stream=True, store=False, input=[{"role": r, "content": t} for r, t in turns])
            async with stream:
                async for _ in stream:
                    events += 1
        elif provider == "self_hosted":
            stream = await self.openai.chat.completions.create(
                model=PROVIDERS[provider], stream=True, stream_options={"include_usage": True},
                messages=[{"role": r, "content": t} for r, t in turns])
            async with stream:
                async for _ in stream:
                    events += 1
        else:
            body = {"contents": [{"role": "user" if r == "user" else "model", "parts": [{"text": t}]} for r, t in turns]}
            async with self.http.stream("POST", f"/v1beta/models/{PROVIDERS[provider]}:streamGenerateContent",
                                        params={"alt": "sse"}, json=body) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("data:"):
                        json.loads(line[5:])
                        events += 1
        turns.append(("assistant", self.reply))
        return events


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    start = now()
    await fn()
    return now() - start


async def run(turns: int, words: int) -> None:
    header(f"provider_overhead: host turn vs bare SDK call, {words}-token reply, no latency, {turns} turns each")
    reply = " ".join(f"w{i}" for i in range(words))
    assert len(tokens(reply)) == words
    server = subprocess.Popen([sys.executable, "-m", "meerkat.testing", "--reply", reply], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(f"fake server {url} (pid {server.pid})")
        for variable in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY"):
            os.environ[variable] = KEY
        bare = Bare(url, reply)
        results: list[tuple[str, float]] = []
        with tempfile.TemporaryDirectory() as root:
            async with open_service("bench", state_root=root, backend="memory") as service:
                await service.patch_config(_config(url))
                for provider, model in PROVIDERS.items():
                    session = (await service.create_session(PROMPT, model=model)).session_id
                    await bare.call(provider)  # warm both paths: connection, imports, caches
                    host_s, bare_s = [], []
                    for _ in range(turns):
                        host_s.append(await _timed(lambda: service.start_turn(session, PROMPT)))
                        bare_s.append(await _timed(lambda: bare.call(provider)))
                    host, base = summary_ms(host_s), summary_ms(bare_s)
                    print(fmt_summary(f"{provider}: host turn (start_turn)", host))
                    print(fmt_summary(f"{provider}: bare SDK streaming call", base))
                    ratio = host["p50"] / base["p50"]
                    print(f"{provider}: host overhead {host['p50'] - base['p50']:.3f} ms per turn (p50)")
                    results.append((provider, ratio))
        await bare.aclose()
        for provider, ratio in results:
            print(f"TARGET {provider} host/bare p50 <= {TARGET_RATIO}x: {ratio:.2f}x  {verdict(ratio <= TARGET_RATIO)}")
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=60, help="turns per provider and side (default 60)")
    parser.add_argument("--words", type=int, default=200, help="tokens in the streamed reply (default 200)")
    args = parser.parse_args()
    trio.run(run, args.turns, args.words)


if __name__ == "__main__":
    main()
