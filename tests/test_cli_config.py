"""`rkat config get|set|patch` with generations and conflicts, and `rkat models`, through the installed CLI."""

from __future__ import annotations

import json
import tomllib

import pytest

from cli_process import Cli


@pytest.fixture
def rkat(tmp_path) -> Cli:
    return Cli(tmp_path / "state", tmp_path)


def test_config_get_set_patch_and_conflicts(rkat, tmp_path):
    fresh = tomllib.loads(rkat("config", "get").out)
    assert fresh["agent"]["max_tokens_per_turn"] == 16384
    envelope = rkat("config", "get", "--format", "json", "--with-generation").json()
    assert envelope["generation"] == 0 and envelope["config"]["agent"]["max_tokens_per_turn"] == 16384
    assert envelope["realm_id"].startswith("ws-")

    assert rkat("config", "patch", "--json", '{"agent": {"max_tokens_per_turn": 4096}}').out == "generation=1\n"
    patch_file = tmp_path / "patch.json"
    patch_file.write_text(json.dumps({"agent": {"system_prompt": "Be brief."}}))
    assert rkat("config", "patch", str(patch_file), "--expected-generation", "1").out == "generation=2\n"
    patched = rkat("config", "get", "--format", "json").json()
    assert patched["agent"]["max_tokens_per_turn"] == 4096 and patched["agent"]["system_prompt"] == "Be brief."

    # A stale expected generation writes nothing and says which generations differ.
    conflict = rkat("config", "patch", "--json", '{"agent": {"max_tokens_per_turn": 1}}',
                    "--expected-generation", "1", expect=15)
    assert conflict.err == "Error: Generation conflict: expected 1, current 2\n"
    stale_set = rkat("config", "set", "--json", "{}", "--expected-generation", "0", expect=15)
    assert stale_set.err == "Error: Generation conflict: expected 0, current 2\n"
    assert rkat("config", "get", "--format", "json").json() == patched

    # set replaces the whole document: what it leaves out returns to its default.
    assert rkat("config", "set", "--toml", '[agent]\nmax_tokens_per_turn = 2048\n',
                "--expected-generation", "2").out == "generation=3\n"
    replaced = rkat("config", "get", "--with-generation")
    assert replaced.out.startswith("# generation = 3\n")
    agent = tomllib.loads(replaced.out)["agent"]
    assert agent["max_tokens_per_turn"] == 2048 and "system_prompt" not in agent

    # Bad documents: clear errors, nothing written.
    assert rkat("config", "patch", "--json", "{not json", expect=2).err.startswith(
        "Error: Failed to parse JSON config from --json:")
    assert rkat("config", "patch", "--json", "[1, 2]", expect=2).err == \
        "Error: --json must hold a JSON object, got list\n"
    invalid = rkat("config", "patch", "--json", '{"agent": {"max_tokens_per_turn": 0}}', expect=2)
    assert invalid.err.startswith("Error: ") and "max_tokens_per_turn" in invalid.err
    assert rkat("config", "set", expect=2).err == \
        "Error: missing document: pass FILE, --json '{...}' or --toml '...'\n"
    assert rkat("config", "get", "--format", "json", "--with-generation").json()["generation"] == 3


def test_models_catalog(rkat):
    catalog = rkat("models", "--format", "json").json()
    providers = {p["provider"]: p for p in catalog["providers"]}
    assert {"anthropic", "openai", "gemini"} <= set(providers)
    assert "claude-sonnet-4-6" in {m["id"] for m in providers["anthropic"]["models"]}


def test_config_typos_and_unknown_models_are_refused(rkat, tmp_path):
    """A misspelt key or model is an error naming the key path, with a did-you-mean; nothing is written."""
    top = rkat("config", "patch", "--json", '{"agnet": {"model": "x"}}', expect=2)
    assert "unknown key 'agnet'" in top.err and "did you mean 'agent'" in top.err
    nested = rkat("config", "patch", "--json", '{"agent": {"max_tokens_pertur": 4096}}', expect=2)
    assert "unknown key 'agent.max_tokens_pertur'" in nested.err
    assert "did you mean 'agent.max_tokens_per_turn'" in nested.err
    toml_file = tmp_path / "typo.toml"
    toml_file.write_text('[agnet]\nmodel = "mock"\n')
    assert "unknown key 'agnet'" in rkat("config", "set", str(toml_file), expect=2).err
    model = rkat("config", "patch", "--json", '{"agent": {"model": "claude-sonet-4-6"}}', expect=2)
    assert "agent.model 'claude-sonet-4-6' is not a known model" in model.err
    assert "did you mean 'claude-sonnet-4-6'" in model.err
    assert rkat("config", "patch", "--json", '{"agent": {"model": "no-such-model"}}', expect=2).err
    assert rkat("config", "get", "--format", "json", "--with-generation").json()["generation"] == 0
    # Known models pass: the catalog's, and one the realm declares.
    assert rkat("config", "patch", "--json", '{"agent": {"model": "claude-sonnet-4-6"}}').out == "generation=1\n"
    declared = '{"models": {"gpt-4o": {"provider": "openai"}}, "agent": {"model": "gpt-4o"}}'
    assert rkat("config", "patch", "--json", declared).out == "generation=2\n"
