"""What each vendor's official client itself sends for a request: the reference for byte comparisons.

Every provider hands its client a body already in wire form, built incrementally
from a per-session cache. These helpers make the same call the plain way (the
SDK's own ``create(**params)`` with the whole conversation converted afresh, or
httpx2's ``json=`` for Gemini) against a fake vendor server and return the
bytes that arrived, so tests can require the two to be identical.
"""

from __future__ import annotations

from typing import Any

import httpx2

from meerkat.providers.base import ProviderRequest
from meerkat.testing import FakeProviderServer, Reply

__all__ = ["sdk_bytes", "PROVIDER_CLASSES"]

#: Which class serves each provider (and self-hosted API style) in the tests.
PROVIDER_CLASSES = {
    "openai": ("meerkat.providers.openai_responses", "OpenAIResponsesProvider"),
    "anthropic": ("meerkat.providers.anthropic", "AnthropicProvider"),
    "gemini": ("meerkat.providers.gemini", "GeminiProvider"),
    "self_hosted": ("meerkat.providers.self_hosted", "ChatCompletionsProvider"),
}


async def _drain(stream: Any) -> None:
    async with stream:
        async for _ in stream:
            pass


async def sdk_bytes(server: FakeProviderServer, style: str, request: ProviderRequest, *,
                    remote_model: str | None = None, provider_name: str = "openai") -> bytes:
    """The body the official client sends for ``request`` converted afresh (``style``: openai, responses
    (self-hosted Responses), chat, anthropic or gemini)."""
    before = len(server.requests)
    if server.default is None:
        assert server.pending == 0, "the reference call would take a reply scripted for another call"
        server.script(Reply(text="reference"))
    if style in ("openai", "responses", "chat"):
        import openai

        from meerkat.providers.openai_responses import hands_back_reasoning, responses_request
        from meerkat.providers.self_hosted import chat_request

        client = openai.AsyncOpenAI(api_key="sk-reference", base_url=f"{server.url}/v1", max_retries=0)
        try:
            if style == "chat":
                body = chat_request(request, remote_model or request.model)
                await _drain(await client.chat.completions.create(**body, stream=True))
            else:
                body = responses_request(request, remote_model or request.model,
                                         with_reasoning=hands_back_reasoning(provider_name, request.model))
                await _drain(await client.responses.create(**body, stream=True))
        finally:
            await client.close()
    elif style == "anthropic":
        import anthropic

        from meerkat.providers.anthropic import anthropic_request

        client = anthropic.AsyncAnthropic(api_key="sk-ant-reference", base_url=server.url, max_retries=0)
        try:
            await _drain(await client.messages.create(**anthropic_request(request), stream=True))
        finally:
            await client.close()
    else:
        from meerkat.providers.gemini import gemini_request

        async with httpx2.AsyncClient(base_url=server.url) as http:
            reply = await http.post(f"/v1beta/models/{request.model}:streamGenerateContent", params={"alt": "sse"},
                                    json=gemini_request(request))
            assert reply.status_code == 200, reply.text
    assert len(server.requests) == before + 1
    return server.requests[-1].raw
