"""The seed's model-selection examples through the installed CLI, against a fake vendor server."""

from __future__ import annotations

import pytest

from cli_process import Cli
from fake_vendor import fake_vendor_process, vendor_env

REPLY = "Paris is the capital of France."


@pytest.fixture
def vendor_url():
    """A fake Anthropic/OpenAI/Gemini server process on a free loopback port."""
    with fake_vendor_process(REPLY) as url:
        yield url


def test_seed_model_and_provider_examples(tmp_path, vendor_url):
    rkat = Cli(tmp_path / "state", tmp_path, vendor_env(vendor_url))
    for args, provider in [
        (["run", "--model", "claude-sonnet-4-6", "What is the capital of France?"], "anthropic"),
        (["run", "--model", "gemini-3-flash-preview", "--provider", "gemini", "Hello"], "gemini"),
        # No --provider: inferred from the catalog.
        (["run", "--model", "claude-opus-4-6", "Hello"], "anthropic"),
        (["run", "--model", "gpt-5.5", "--provider", "openai", "--param", "reasoning_effort=high", "Hello"], "openai"),
    ]:
        result = rkat(*args)
        assert result.out == REPLY + "\n", args
        shown = rkat("session", "show", "last", "--format", "json").json()["session"]
        assert (shown["model"], shown["provider"]) == (args[2], provider)
    # The most recent session keeps its model and provider on resume.
    assert rkat("run", "--resume", "--stream", "Now explain it in more detail").out == REPLY + "\n"
    resumed = rkat("session", "show", "last", "--format", "json").json()
    assert resumed["session"]["model"] == "gpt-5.5" and resumed["session"]["message_count"] == 4
