"""Model selection, the catalog, credentials, endpoints, provider_params checks and the retry policy."""

from __future__ import annotations

import subprocess
import sys

import httpx2
import pytest

from actors import open_service
from meerkat.config import Config
from meerkat.config.schema import config_from_dict
from meerkat.errors import InvalidParams, ProviderError
from meerkat.providers import RetryPolicy, effective_provider_params, resolve_model, validate_provider_params
from meerkat.providers.base import ProviderCallError
from meerkat.providers.credentials import base_url_for, find_api_key, require_api_key
from meerkat.testing import Reply
from provider_cases import CASES, clear_keys, provider_service


def _config(**doc):
    return config_from_dict(doc)


def test_model_alone_finds_its_provider_in_the_catalog_then_by_prefix(monkeypatch):
    clear_keys(monkeypatch)
    assert resolve_model("claude-opus-4-6", None) == ("claude-opus-4-6", "anthropic")
    assert resolve_model("gpt-5.5", None) == ("gpt-5.5", "openai")
    assert resolve_model("gemini-3-flash-preview", None) == ("gemini-3-flash-preview", "gemini")
    assert resolve_model("claude-future-9", None) == ("claude-future-9", "anthropic")  # prefix
    assert resolve_model("gpt-7-mini", None) == ("gpt-7-mini", "openai")
    with pytest.raises(InvalidParams, match="cannot infer provider from model 'llama3'; specify a provider"):
        resolve_model("llama3", None)


def test_mismatches_and_unknown_providers_are_clear_errors(monkeypatch):
    clear_keys(monkeypatch)
    with pytest.raises(InvalidParams, match="model 'gpt-5.5' belongs to provider 'openai', not provider 'anthropic'"):
        resolve_model("gpt-5.5", "anthropic")
    with pytest.raises(InvalidParams, match="unknown provider 'azure'"):
        resolve_model("gpt-5.5", "azure")
    with pytest.raises(InvalidParams, match=r"unknown self-hosted model 'mystery'.*\[self_hosted.models.mystery\]"):
        resolve_model("mystery", "self_hosted")
    # An uncatalogued name with an explicit provider is taken as given.
    assert resolve_model("my-finetune", "openai") == ("my-finetune", "openai")


def test_self_hosted_aliases_and_custom_models_come_from_config(monkeypatch):
    clear_keys(monkeypatch)
    config = _config(self_hosted={"servers": {"ollama": {"base_url": "http://127.0.0.1:11434"}},
                                  "models": {"gemma": {"server": "ollama"}}},
                     models={"my-preview": {"provider": "anthropic"}, "openai": "gpt-5.4"})
    assert resolve_model("gemma", None, config) == ("gemma", "self_hosted")
    assert resolve_model("gemma", "self-hosted", config) == ("gemma", "self_hosted")
    assert resolve_model(None, "self_hosted", config) == ("gemma", "self_hosted")
    assert resolve_model("my-preview", None, config) == ("my-preview", "anthropic")
    assert resolve_model(None, "openai", config) == ("gpt-5.4", "openai")  # [models] openai = ...
    assert resolve_model(None, "gemini", config) == ("gemini-3-flash-preview", "gemini")  # catalog default


def test_default_model_is_config_then_a_keyed_provider_then_mock(monkeypatch):
    clear_keys(monkeypatch)
    assert resolve_model(None, None, Config()) == ("mock", "mock")
    monkeypatch.setenv("GEMINI_API_KEY", "g-key")
    assert resolve_model(None, None, Config()) == ("gemini-3-flash-preview", "gemini")
    monkeypatch.setenv("OPENAI_API_KEY", "o-key")
    assert resolve_model(None, None, Config()) == ("gpt-5.5", "openai")
    assert resolve_model(None, None, _config(agent={"model": "claude-sonnet-4-6"})) == ("claude-sonnet-4-6", "anthropic")
    # agent.model of another provider does not leak into an explicit provider choice.
    assert resolve_model(None, "gemini", _config(agent={"model": "claude-sonnet-4-6"}))[0] == "gemini-3-flash-preview"


def test_keys_prefer_rkat_variables_and_ignore_empty_ones(monkeypatch):
    clear_keys(monkeypatch)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "plain")
    monkeypatch.setenv("RKAT_ANTHROPIC_API_KEY", "   ")
    assert find_api_key("anthropic") == "plain"
    monkeypatch.setenv("RKAT_ANTHROPIC_API_KEY", " prefixed ")
    assert find_api_key("anthropic") == "prefixed"
    monkeypatch.setenv("GOOGLE_API_KEY", "google")
    assert find_api_key("gemini") == "google"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini")
    assert find_api_key("gemini") == "gemini"
    with pytest.raises(ProviderError, match="set RKAT_OPENAI_API_KEY or OPENAI_API_KEY, or use the offline mock"):
        require_api_key("openai")


def test_base_urls_come_from_config_then_environment_then_the_vendor(monkeypatch):
    clear_keys(monkeypatch)
    assert base_url_for("openai") == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy.local/v1/")
    assert base_url_for("openai") == "http://proxy.local/v1"
    monkeypatch.setenv("RKAT_OPENAI_BASE_URL", "http://rkat.local/v1")
    assert base_url_for("openai") == "http://rkat.local/v1"
    assert base_url_for("openai", {"openai": {"base_url": "http://config.local/v1"}}) == "http://config.local/v1"


def test_config_refuses_keys_and_bad_endpoints():
    with pytest.raises(InvalidParams, match="never stored in config"):
        _config(providers={"anthropic": {"api_key": "sk-secret"}})
    with pytest.raises(InvalidParams, match="providers.openai.base_url must be an http"):
        _config(providers={"openai": {"base_url": "ftp://x"}})


def test_provider_params_are_checked_against_the_catalog():
    assert validate_provider_params("openai", {"reasoning_effort": "high"}, "gpt-5.5") == {"reasoning_effort": "high"}
    with pytest.raises(InvalidParams, match="provider_params.temperature is not accepted by gpt-5.5"):
        validate_provider_params("openai", {"temperature": 1}, "gpt-5.5")
    # An uncatalogued OpenAI model gets the provider's whole set, temperature included.
    assert validate_provider_params("openai", {"temperature": 1}, "my-finetune") == {"temperature": 1}
    with pytest.raises(InvalidParams, match=r"thinking_budget_tokens must be >= 1024 \(got 10\)"):
        validate_provider_params("anthropic", {"thinking_budget_tokens": 10}, "claude-opus-4-6")
    with pytest.raises(InvalidParams, match="max_output_tokens must be an integer"):
        validate_provider_params("gemini", {"max_output_tokens": True}, "gemini-3-flash-preview")
    with pytest.raises(InvalidParams, match="stop_sequences item 1 must be a string"):
        validate_provider_params("self_hosted", {"stop_sequences": ["a", 2]}, "local")
    with pytest.raises(InvalidParams, match="provider_params must be an object"):
        validate_provider_params("mock", ["reply"], "mock")


def test_realm_defaults_apply_only_where_the_model_accepts_them():
    config = _config(agent={"temperature": 0.4, "provider_params": {"reasoning_effort": "low"}})
    assert effective_provider_params("openai", "gpt-5.5", {}, config) == {"reasoning_effort": "low"}
    assert effective_provider_params("gemini", "gemini-3-flash-preview", {}, config) == {"temperature": 0.4}
    assert effective_provider_params("openai", "gpt-5.5", {"reasoning_effort": "high"}, config) == {
        "reasoning_effort": "high"}
    assert effective_provider_params("mock", "mock", {"reply": "x"}, config) == {"reply": "x"}


async def test_catalog_lists_models_with_their_accepted_params():
    async with open_service(backend="memory") as service:
        catalog = await service.models_catalog()
    models = {m["id"]: m for p in catalog["providers"] for m in p["models"]}
    for model in ("claude-sonnet-4-6", "claude-opus-4-6", "gpt-5.5", "gemini-3-flash-preview", "mock"):
        schema = models[model]["profile"]["params_schema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert "reasoning_effort" in models["gpt-5.5"]["profile"]["params_schema"]["properties"]
    assert "thinking_budget_tokens" in models["claude-opus-4-6"]["profile"]["params_schema"]["properties"]
    assert models["gpt-5.5"]["profile"]["supports_temperature"] is False


def test_retry_policy_backs_off_honours_hints_and_floors_rate_limits():
    policy = RetryPolicy(max_retries=3, initial_delay_ms=100, max_delay_ms=1000, multiplier=2.0,
                         rate_limit_floor_ms=500)
    server = ProviderCallError("boom", retryable=True, provider="openai")
    delays = [policy.schedule(n, server).plan.computed_delay_ms for n in (1, 2, 3)]
    assert 90 <= delays[0] <= 110 and 180 <= delays[1] <= 220 and 360 <= delays[2] <= 440
    assert policy.schedule(4, server) is None
    assert policy.schedule(1, ProviderCallError("auth")) is None
    limited = ProviderCallError("429", retry_kind="rate_limited", retry_after_ms=50, provider="anthropic")
    plan = policy.schedule(1, limited).plan
    assert plan.rate_limit_floor_applied and plan.selected_delay_ms == 500 and plan.retry_after_hint_ms == 50
    hinted = ProviderCallError("503", retryable=True, retry_after_ms=2000)
    assert policy.schedule(1, hinted).plan.selected_delay_ms == 2000


async def test_default_model_follows_the_key_in_the_environment(tmp_path, monkeypatch):
    """With only an OpenAI key set, a session created with no model runs on OpenAI."""
    async with provider_service(CASES["openai"], tmp_path, monkeypatch) as (service, server):
        server.script(Reply(text="hello from the default"))
        result = await service.create_session("hi")
        session = await service.read_session(result.session_id)
    assert (session.provider, session.model, result.text) == ("openai", "gpt-5.5", "hello from the default")
    assert server.requests[0].headers["authorization"] == f"Bearer {CASES['openai'].key}"


def test_fake_server_runs_as_a_process():
    process = subprocess.Popen([sys.executable, "-m", "meerkat.testing", "--reply", "from a process"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        answer = httpx2.post(f"{url}/v1/chat/completions", json=body, timeout=10).text
        assert '"content":"from "' in answer and "data: [DONE]" in answer
        assert httpx2.post(f"{url}/nowhere", json={}, timeout=10).status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
