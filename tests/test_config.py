"""Config schema, RFC 7396 merge patch, and the generation store (file and memory)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from meerkat.config import (
    Config,
    ConfigEnvelope,
    ConfigStore,
    FileConfigStore,
    MemoryConfigStore,
    apply_merge_patch,
    config_from_dict,
    config_to_dict,
)
from meerkat.errors import ConfigGenerationConflict, ErrorCode, InvalidParams, StoreError

# --- schema -----------------------------------------------------------------


def test_default_config_is_complete() -> None:
    cfg = Config()
    assert cfg.agent.model == ""
    assert cfg.agent.max_tokens_per_turn == 16384
    assert cfg.agent.max_turns == 100
    assert cfg.agent.budget_warning_threshold == 0.8
    assert cfg.agent.provider_params == {}
    assert cfg.budget.max_tokens is None
    assert cfg.limits.budget is None
    assert (cfg.retry.max_retries, cfg.retry.initial_delay_ms, cfg.retry.max_delay_ms) == (3, 500, 30000)
    assert cfg.retry.multiplier == 2.0
    assert cfg.tools.builtins_enabled is True
    assert cfg.tools.default_timeout_secs == 600
    assert cfg.tools.max_concurrent == 10
    assert (cfg.rest.host, cfg.rest.port) == ("127.0.0.1", 8080)
    assert cfg.models == {} and cfg.self_hosted == {} and cfg.provider_tools == {}
    assert (cfg.mock.token_delay_ms, cfg.mock.first_token_latency_ms) == (0.0, 0.0)


def test_to_dict_is_the_full_document_with_nulls() -> None:
    doc = config_to_dict(Config())
    assert set(doc) == {
        "agent", "budget", "limits", "retry", "tools", "rest",
        "models", "self_hosted", "providers", "provider_tools", "mock", "storage",
    }  # fmt: skip
    assert doc["agent"]["system_prompt"] is None
    assert doc["budget"] == {"max_tokens": None, "max_duration": None, "max_tool_calls": None}
    assert doc["rest"] == {"host": "127.0.0.1", "port": 8080}
    assert json.loads(json.dumps(doc)) == doc  # JSON-able
    assert config_from_dict(doc) == Config()


def test_from_dict_fills_defaults_and_ignores_unknown_keys() -> None:
    cfg = config_from_dict({"agent": {"model": "gpt-5.5", "shiny": 1}, "realm": {"x": {}}, "budget": {"max_tokens": 9}})
    assert cfg.agent.model == "gpt-5.5"
    assert cfg.agent.max_turns == 100
    assert cfg.budget.max_tokens == 9
    assert "shiny" not in config_to_dict(cfg)["agent"]
    assert "realm" not in config_to_dict(cfg)


def test_ints_are_accepted_for_float_fields() -> None:
    cfg = config_from_dict({"tools": {"default_timeout_secs": 30}, "mock": {"token_delay_ms": 2}})
    assert cfg.tools.default_timeout_secs == 30.0
    assert isinstance(cfg.tools.default_timeout_secs, float)
    assert cfg.mock.token_delay_ms == 2.0


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"agent": {"max_tokens_per_turn": "big"}}, "Expected `int`, got `str` - at `$.agent.max_tokens_per_turn`"),
        ({"agent": {"max_turns": True}}, "Expected `int`, got `bool` - at `$.agent.max_turns`"),
        ({"rest": {"port": 80.5}}, "Expected `int`, got `float` - at `$.rest.port`"),
        ({"agent": "x"}, "Expected `object`, got `str` - at `$.agent`"),
        ({"models": []}, "Expected `object`, got `array` - at `$.models`"),
        ({"agent": {"max_tokens_per_turn": 0}}, "agent.max_tokens_per_turn must be > 0"),
        ({"agent": {"max_turns": 0}}, "agent.max_turns must be > 0"),
        ({"budget": {"max_tokens": 0}}, "budget.max_tokens must be > 0"),
        ({"limits": {"budget": 0}}, "limits.budget must be > 0"),
        ({"limits": {"max_sessions": -1}}, "limits.max_sessions must be > 0"),
        ({"agent": {"budget_warning_threshold": 0}}, "agent.budget_warning_threshold must be in (0, 1]"),
        ({"agent": {"budget_warning_threshold": 1.5}}, "agent.budget_warning_threshold must be in (0, 1]"),
        ({"agent": {"budget_warning_threshold": float("nan")}}, "agent.budget_warning_threshold"),
        ({"rest": {"port": 65536}}, "rest.port must be in 0..65535"),
        ({"rest": {"port": -1}}, "rest.port must be in 0..65535"),
        ({"tools": {"max_concurrent": 0}}, "tools.max_concurrent must be >= 1"),
        ({"retry": {"max_retries": -1}}, "retry.max_retries must be >= 0"),
        ({"mock": {"token_delay_ms": -1}}, "mock.token_delay_ms must be >= 0"),
        ({"mock": {"first_token_latency_ms": -0.5}}, "mock.first_token_latency_ms must be >= 0"),
    ],
)
def test_validation_errors_name_the_key(doc: dict, fragment: str) -> None:
    with pytest.raises(InvalidParams) as info:
        config_from_dict(doc)
    assert info.value.message.startswith("Invalid config: ")
    assert fragment in info.value.message
    assert info.value.code is ErrorCode.INVALID_PARAMS


@pytest.mark.parametrize("doc", [[], "x", 3, None])
def test_top_level_must_be_an_object(doc: object) -> None:
    with pytest.raises(InvalidParams, match="expected an object at the top level"):
        config_from_dict(doc)  # type: ignore[arg-type]


def test_boundary_values_are_accepted() -> None:
    cfg = config_from_dict(
        {
            "agent": {"budget_warning_threshold": 1, "max_turns": 1},
            "rest": {"port": 0},
            "retry": {"max_retries": 0},
            "tools": {"max_concurrent": 1},
        }
    )
    assert cfg.agent.budget_warning_threshold == 1.0
    assert cfg.rest.port == 0
    assert cfg.retry.max_retries == 0


# --- merge patch (RFC 7396) ---------------------------------------------------

# Appendix A of RFC 7396: (original, patch, result).
RFC7396_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7396_APPENDIX_A)
def test_merge_patch_rfc7396_appendix(target: object, patch: object, expected: object) -> None:
    assert apply_merge_patch(target, patch) == expected


def test_merge_patch_rfc_section3_example() -> None:
    target = {
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged",
    }
    patch = {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]}
    assert apply_merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["example"],
        "content": "This will be unchanged",
        "phoneNumber": "+01-123-456-7890",
    }


def test_merge_patch_does_not_mutate_its_inputs() -> None:
    target = {"a": {"b": 1, "c": 2}}
    patch = {"a": {"b": None, "d": 3}}
    assert apply_merge_patch(target, patch) == {"a": {"c": 2, "d": 3}}
    assert target == {"a": {"b": 1, "c": 2}}
    assert patch == {"a": {"b": None, "d": 3}}


# --- stores -------------------------------------------------------------------


@pytest.fixture(params=["file", "memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConfigStore]:
    if request.param == "file":
        yield FileConfigStore(tmp_path / "realm")
    elif request.param == "memory":
        yield MemoryConfigStore()
    else:
        from meerkat.config.postgres_store import PostgresConfigStore
        from meerkat.store.postgres_db import PostgresDatabase

        database = PostgresDatabase(request.getfixturevalue("postgres_migrated_url"))
        try:
            yield PostgresConfigStore(database, realm_id="test-realm")
        finally:
            database.close()


def test_both_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(FileConfigStore(tmp_path), ConfigStore)
    assert isinstance(MemoryConfigStore(), ConfigStore)


def test_get_on_empty_store_is_defaults_at_generation_zero(store: ConfigStore) -> None:
    assert store.get() == ConfigEnvelope(config=Config(), generation=0)


def test_set_replaces_and_bumps_generation(store: ConfigStore) -> None:
    first = store.set({"agent": {"model": "gpt-5.5", "max_turns": 7}, "rest": {"port": 9000}})
    assert first.generation == 1
    assert first.config.agent.model == "gpt-5.5"
    second = store.set({"agent": {"model": "claude-opus-4-7"}})
    assert second.generation == 2
    # A replace: every key the payload leaves out is back at its default.
    assert second.config.agent.max_turns == 100
    assert second.config.rest.port == 8080
    assert store.get() == second


def test_set_accepts_a_config_object(store: ConfigStore) -> None:
    env = store.set(config_from_dict({"limits": {"budget": 1234}}))
    assert env.config.limits.budget == 1234
    assert store.get().config.limits.budget == 1234


def test_set_rejects_invalid_config_and_writes_nothing(store: ConfigStore) -> None:
    store.set({"agent": {"model": "gpt-5.4-mini"}})
    with pytest.raises(InvalidParams, match=r"agent\.max_turns"):
        store.set({"agent": {"max_turns": 0}})
    with pytest.raises(InvalidParams, match="expected an object"):
        store.set(["not", "a", "config"])  # type: ignore[arg-type]
    env = store.get()
    assert env.generation == 1
    assert env.config.agent.model == "gpt-5.4-mini"


def test_patch_merges_and_null_resets_to_default(store: ConfigStore) -> None:
    store.set({"agent": {"model": "gpt-5.5", "max_turns": 5}, "budget": {"max_tokens": 500}})
    env = store.patch({"agent": {"max_turns": None, "provider_params": {"reasoning_effort": "high"}}})
    assert env.generation == 2
    assert env.config.agent.model == "gpt-5.5"  # untouched
    assert env.config.agent.max_turns == 100  # null -> default
    assert env.config.agent.provider_params == {"reasoning_effort": "high"}
    assert env.config.budget.max_tokens == 500
    env = store.patch({"budget": {"max_tokens": None}, "agent": {"provider_params": {"reasoning_effort": None}}})
    assert env.config.budget.max_tokens is None
    assert env.config.agent.provider_params == {}
    assert store.get() == env


def test_patch_validates_the_merged_result(store: ConfigStore) -> None:
    store.patch({"rest": {"port": 1234}})
    with pytest.raises(InvalidParams, match=r"rest\.port"):
        store.patch({"rest": {"port": 70000}})
    with pytest.raises(InvalidParams, match=r"\$\.agent\.max_turns"):
        store.patch({"agent": {"max_turns": "many"}})
    env = store.get()
    assert (env.config.rest.port, env.generation) == (1234, 1)


@pytest.mark.parametrize("patch", [[1], "x", None, 3])
def test_patch_must_be_an_object(store: ConfigStore, patch: object) -> None:
    with pytest.raises(InvalidParams, match="expected an object"):
        store.patch(patch)  # type: ignore[arg-type]
    assert store.get().generation == 0


def test_expected_generation_match_succeeds(store: ConfigStore) -> None:
    assert store.set({}, expected_generation=0).generation == 1
    assert store.patch({"agent": {"model": "mock"}}, expected_generation=1).generation == 2


@pytest.mark.parametrize("op", ["set", "patch"])
def test_expected_generation_conflict_writes_nothing(store: ConfigStore, op: str) -> None:
    store.set({"agent": {"model": "gpt-5.4"}})
    store.patch({"agent": {"max_turns": 3}})
    before = store.get()
    write: Callable[..., ConfigEnvelope] = getattr(store, op)
    with pytest.raises(ConfigGenerationConflict) as info:
        write({"agent": {"model": "gpt-5.6"}}, expected_generation=1)
    assert (info.value.expected, info.value.current) == (1, 2)
    assert info.value.message == "Generation conflict: expected 1, current 2"
    assert info.value.details == {"expected_generation": 1, "current_generation": 2}
    assert store.get() == before


@pytest.mark.parametrize("bad", [-1, True, False, 1.0, "1"])
def test_expected_generation_must_be_a_non_negative_int(store: ConfigStore, bad: object) -> None:
    with pytest.raises(InvalidParams, match="expected_generation"):
        store.set({}, expected_generation=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParams, match="expected_generation"):
        store.patch({}, expected_generation=bad)  # type: ignore[arg-type]
    assert store.get().generation == 0


def test_nulls_inside_free_form_tables_are_dropped_consistently(store: ConfigStore) -> None:
    # TOML has no null, so both stores answer as a later read of the file would.
    env = store.set({"agent": {"provider_params": {"a": 1, "b": None}}, "models": {"anthropic": None}})
    assert env.config.agent.provider_params == {"a": 1}
    assert env.config.models == {}
    assert store.get() == env


def test_value_toml_cannot_hold_is_rejected(store: ConfigStore) -> None:
    with pytest.raises(InvalidParams, match="TOML"):
        store.set({"agent": {"provider_params": {"stops": [None]}}})
    assert store.get().generation == 0


# --- file store specifics -----------------------------------------------------


def test_file_store_layout_and_contents(tmp_path: Path) -> None:
    realm = tmp_path / "state" / "my-realm"
    store = FileConfigStore(realm)
    assert store.get().generation == 0
    assert realm.is_dir()  # get creates the realm directory ...
    assert not (realm / "config.toml").exists()  # ... but writes no document
    store.patch({"agent": {"model": "gpt-5.5", "system_prompt": None}, "budget": {"max_tokens": 50000}})
    doc = tomllib.loads((realm / "config.toml").read_text())
    assert doc["agent"]["model"] == "gpt-5.5"
    assert doc["agent"]["max_tokens_per_turn"] == 16384  # full document, defaults written
    assert "system_prompt" not in doc["agent"]  # None has no TOML spelling
    assert doc["budget"] == {"max_tokens": 50000}
    assert json.loads((realm / "config_state.json").read_text()) == {"generation": 1}
    assert sorted(p.name for p in realm.iterdir()) == ["config.toml", "config_state.json", "config_state.lock"]


def test_file_store_unknown_keys_are_ignored_then_dropped(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('future = 1\n[agent]\nmodel = "x"\nshiny = true\n')
    store = FileConfigStore(tmp_path)
    assert store.get().config.agent.model == "x"
    store.patch({"rest": {"port": 1}})
    doc = tomllib.loads((tmp_path / "config.toml").read_text())
    assert "future" not in doc and "shiny" not in doc["agent"]
    assert doc["agent"]["model"] == "x"


def test_file_store_shares_state_between_instances(tmp_path: Path) -> None:
    FileConfigStore(tmp_path).set({"agent": {"model": "claude-haiku-4-5"}})
    env = FileConfigStore(tmp_path).get()
    assert (env.config.agent.model, env.generation) == ("claude-haiku-4-5", 1)


def test_file_store_conflict_leaves_files_byte_identical(tmp_path: Path) -> None:
    store = FileConfigStore(tmp_path)
    store.set({"agent": {"model": "gpt-5.4"}})
    config_bytes = (tmp_path / "config.toml").read_bytes()
    state_bytes = (tmp_path / "config_state.json").read_bytes()
    with pytest.raises(ConfigGenerationConflict):
        store.patch({"agent": {"model": "gpt-5.6"}}, expected_generation=0)
    assert (tmp_path / "config.toml").read_bytes() == config_bytes
    assert (tmp_path / "config_state.json").read_bytes() == state_bytes
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("content", [b"[agent\nmodel = 1", b"\xff\xfe not utf-8", b'[agent]\nmax_turns = "x"\n'])
def test_corrupt_config_file_is_a_store_error_and_is_kept(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    store = FileConfigStore(tmp_path)
    with pytest.raises(StoreError, match="config.toml") as info:
        store.get()
    assert str(path) in info.value.message
    with pytest.raises(StoreError, match="config.toml"):
        store.patch({"agent": {"model": "x"}})
    assert path.read_bytes() == content  # never overwritten by a read or a failed patch
    assert not (tmp_path / "config_state.json").exists()


def test_set_repairs_a_corrupt_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[[[ broken")
    store = FileConfigStore(tmp_path)
    env = store.set({"agent": {"model": "gpt-5.3-codex"}})
    assert env.generation == 1
    assert store.get().config.agent.model == "gpt-5.3-codex"


@pytest.mark.parametrize("content", ["{", "[]", '{"generation": "3"}', '{"generation": -1}', '{"generation": true}'])
def test_corrupt_state_file_is_a_store_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "config_state.json").write_text(content)
    with pytest.raises(StoreError, match="config_state.json"):
        FileConfigStore(tmp_path).get()
    assert (tmp_path / "config_state.json").read_text() == content


def test_lock_timeout_is_a_store_error(tmp_path: Path) -> None:
    store = FileConfigStore(tmp_path, lock_timeout=0.05)
    store.set({"agent": {"model": "gpt-5.4"}})
    fd = os.open(tmp_path / "config_state.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another holder (a separate open file description)
        with pytest.raises(StoreError, match="timed out acquiring config lock"):
            store.get()
        with pytest.raises(StoreError, match="timed out acquiring config lock"):
            store.patch({"agent": {"model": "blocked"}})
    finally:
        os.close(fd)
    env = store.get()  # released with the descriptor
    assert (env.config.agent.model, env.generation) == ("gpt-5.4", 1)


def test_concurrent_writers_in_one_process_lose_nothing(store: ConfigStore) -> None:
    # Threads of one process: the file store's flock is per open file description,
    # so it serialises threads as well as processes.
    def writer(n: int) -> None:
        for i in range(25):
            store.patch({"agent": {"provider_params": {f"t{n}_{i}": i}}})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    env = store.get()
    assert env.generation == 100
    assert env.config.agent.provider_params == {f"t{n}_{i}": i for n in range(4) for i in range(25)}


def test_mutating_a_returned_config_does_not_change_the_store(store: ConfigStore) -> None:
    env = store.patch({"agent": {"provider_params": {"a": 1}}})
    env.config.agent.provider_params["b"] = 2
    store.get().config.agent.provider_params["c"] = 3
    assert store.get().config.agent.provider_params == {"a": 1}


def test_postgres_pool_size_is_a_bounded_integer() -> None:
    assert Config().storage.postgres.pool_size == 4
    assert config_from_dict({"storage": {"postgres": {"pool_size": 12}}}).storage.postgres.pool_size == 12
    for bad in (0, 101, -1):
        with pytest.raises(InvalidParams, match=r"storage.postgres.pool_size must be in 1..100"):
            config_from_dict({"storage": {"postgres": {"pool_size": bad}}})
    with pytest.raises(InvalidParams, match=r"\$.storage.postgres.pool_size"):
        config_from_dict({"storage": {"postgres": {"pool_size": "8"}}})
