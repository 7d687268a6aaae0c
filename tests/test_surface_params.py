"""The shared wire-parameter and realm-option parsing every server surface uses."""

import argparse

import pytest

from meerkat.errors import InvalidParams
from surfaces.realm_options import RealmOptions, add_realm_arguments, realm_options_from_args
from surfaces.session_params import config_write, create_options, require_prompt, turn_options


def test_turn_options_pick_known_fields_and_drop_nulls():
    params = {"prompt": "hi", "model": "mock", "provider": None, "max_tokens": 50,
              "provider_params": {"reply": "x"}, "session_events": False}
    assert turn_options(params) == {"model": "mock", "max_tokens": 50, "provider_params": {"reply": "x"}}


@pytest.mark.parametrize("params, field", [
    ({"model": 5}, "model"), ({"system_prompt": []}, "system_prompt"), ({"max_tokens": "10"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"), ({"provider_params": [1]}, "provider_params"),
    ({"labels": {"a": 1}}, "labels"), ({"budget_max_tokens": -1}, "budget_max_tokens"),
])
def test_wrong_types_name_the_field(params, field):
    with pytest.raises(InvalidParams, match=field):
        create_options(params)


def test_system_prompt_can_be_disabled_at_create_only():
    assert create_options({"system_prompt": {"action": "disable"}}) == {"system_prompt": ""}
    with pytest.raises(InvalidParams, match="disable"):
        create_options({"system_prompt": {"action": "replace"}})
    with pytest.raises(InvalidParams, match="system_prompt must be a string"):
        turn_options({"system_prompt": {"action": "disable"}})


async def test_disabled_system_prompt_skips_the_config_default():
    async with RealmOptions(backend="memory").open_service() as service:
        await service.patch_config({"agent": {"system_prompt": "Be terse."}})
        default = await service.create_session("hi")
        disabled = await service.create_session("hi", **create_options({"system_prompt": {"action": "disable"}}))
        roles = [[type(row).__name__ for row in (await service.read_history(r.session_id)).messages]
                 for r in (default, disabled)]
    assert roles == [["SystemMessage", "UserMessage", "BlockAssistantMessage"], ["UserMessage", "BlockAssistantMessage"]]


def test_prompt_is_required_and_checked():
    with pytest.raises(InvalidParams, match="prompt"):
        require_prompt({})
    with pytest.raises(InvalidParams, match="prompt"):
        require_prompt({"prompt": "  "})
    assert require_prompt({"prompt": "hello"}) == "hello"


def test_config_write_wrapped_and_bare_forms():
    assert config_write({"patch": {"a": 1}, "expected_generation": 3}, "patch", allow_bare=False) == ({"a": 1}, 3)
    assert config_write({"agent": {}, "expected_generation": 2}, "config", allow_bare=True) == ({"agent": {}}, 2)
    with pytest.raises(InvalidParams, match="missing field `config`"):
        config_write({"agent": {}}, "config", allow_bare=False)
    with pytest.raises(InvalidParams, match="expected_generation"):
        config_write({"patch": {}, "expected_generation": "1"}, "patch", allow_bare=False)


def test_realm_options_parse_and_refuse_bad_combinations():
    parser = argparse.ArgumentParser()
    add_realm_arguments(parser)
    options = realm_options_from_args(parser.parse_args(["-r", "team", "--realm-backend", "jsonl"]))
    assert options == RealmOptions(realm_id="team", backend="jsonl")
    with pytest.raises(InvalidParams, match="--isolated"):
        realm_options_from_args(parser.parse_args(["--realm", "team", "--isolated"]))
    with pytest.raises(InvalidParams, match="realm id"):
        realm_options_from_args(parser.parse_args(["--realm", "../x"]))


def test_workspace_default_only_when_no_realm_named(tmp_path):
    assert RealmOptions().with_workspace_default(str(tmp_path)).realm_id.startswith("ws-")
    assert RealmOptions(realm_id="mine").with_workspace_default(str(tmp_path)).realm_id == "mine"
    assert RealmOptions(isolated=True).with_workspace_default(str(tmp_path)).realm_id is None


async def test_models_catalog_has_seed_models_and_self_hosted_aliases():
    async with RealmOptions(backend="memory").open_service() as service:
        await service.patch_config({"self_hosted": {"models": {"local-llama": {"server": "ollama"}}}})
        catalog = await service.models_catalog()
    assert catalog["contract_version"] == {"major": 0, "minor": 9, "patch": 6}
    ids = {m["id"]: p["provider"] for p in catalog["providers"] for m in p["models"]}
    for model, provider in [("claude-sonnet-4-6", "anthropic"), ("claude-opus-4-6", "anthropic"),
                            ("gpt-5.5", "openai"), ("gemini-3-flash-preview", "gemini"),
                            ("local-llama", "self_hosted")]:
        assert ids[model] == provider
