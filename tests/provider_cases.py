"""How each real provider is pointed at a fake server in the tests: env key, config, model."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import pytest

from actors import SessionService, open_service
from meerkat.agent.tools import Tool, ToolOutput
from meerkat.events import EventEnvelope
from meerkat.providers.base import ToolSpec
from meerkat.providers.credentials import KEY_VARIABLES
from meerkat.testing import FakeProviderServer, open_fake_provider_server

#: Providers with a real client, in the order the tests run them.
REAL_PROVIDERS = ["anthropic", "openai", "gemini", "self_hosted"]

#: Retries fast enough for tests: the delay policy is unit-tested separately.
FAST_RETRY = {"initial_delay_ms": 1, "max_delay_ms": 5, "rate_limit_floor_ms": 0}


@dataclass(frozen=True)
class ProviderCase:
    provider: str
    model: str
    key_variable: str | None
    key: str | None

    def config(self, url: str) -> dict[str, Any]:
        """The realm config patch pointing this provider at the fake server at ``url``."""
        if self.provider == "self_hosted":
            return {"self_hosted": {"servers": {"local": {"base_url": url}},
                                    "models": {self.model: {"server": "local", "remote_model": "llama3:8b"}}}}
        base = f"{url}/v1" if self.provider == "openai" else url
        return {"providers": {self.provider: {"base_url": base}}}


CASES = {
    "anthropic": ProviderCase("anthropic", "claude-sonnet-4-6", "ANTHROPIC_API_KEY", "sk-ant-test-key-0001"),
    "openai": ProviderCase("openai", "gpt-5.5", "OPENAI_API_KEY", "sk-openai-test-key-0002"),
    "gemini": ProviderCase("gemini", "gemini-3-flash-preview", "GEMINI_API_KEY", "gemini-test-key-0003"),
    "self_hosted": ProviderCase("self_hosted", "local-llama", None, None),
}


def clear_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every provider key and base URL variable, whatever the machine has set."""
    for names in KEY_VARIABLES.values():
        for name in names:
            monkeypatch.delenv(name, raising=False)
    for provider in ("ANTHROPIC", "OPENAI", "GEMINI"):
        monkeypatch.delenv(f"{provider}_BASE_URL", raising=False)
        monkeypatch.delenv(f"RKAT_{provider}_BASE_URL", raising=False)


def math_tools() -> list[Tool]:
    """Two tools the scripted model calls in parallel."""
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}

    async def add(args: dict[str, Any]) -> ToolOutput:
        return ToolOutput(f"sum={args['a'] + args['b']}")

    async def mul(args: dict[str, Any]) -> ToolOutput:
        return ToolOutput(f"product={args['a'] * args['b']}")

    return [Tool(ToolSpec("add", "Add two numbers", schema), add), Tool(ToolSpec("mul", "Multiply", schema), mul)]


@asynccontextmanager
async def provider_service(case: ProviderCase, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                           backend: str = "memory", retry: dict[str, Any] | None = None,
                           **server_knobs: Any) -> AsyncIterator[tuple[SessionService, FakeProviderServer]]:
    """A service whose ``case.provider`` talks to a fresh fake server."""
    clear_keys(monkeypatch)
    if case.key_variable:
        monkeypatch.setenv(case.key_variable, case.key or "")
    async with open_fake_provider_server(**server_knobs) as server:
        async with open_service("providers", state_root=tmp_path, backend=backend) as service:
            await service.patch_config({**case.config(server.url), "retry": retry or FAST_RETRY})
            for tool in math_tools():
                service.register_tool(tool)
            yield service, server


def shape(events: list[EventEnvelope]) -> list[str]:
    """Event types with repeats of the same type collapsed (delta counts differ by vendor)."""
    types: list[str] = []
    for envelope in events:
        if not types or types[-1] != envelope.type:
            types.append(envelope.type)
    return types


async def collect(stream: Any) -> list[EventEnvelope]:
    """Every event of a streamed turn."""
    return [envelope async for envelope in stream]
