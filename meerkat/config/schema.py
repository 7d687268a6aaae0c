"""The typed realm config: sections, defaults and validation.

``Config()`` is the complete default config, and every section has defaults too, so
a document that names only a few keys still yields a whole config ("missing sections
and fields take their defaults"). That is what makes ``config set`` a replace and
lets a ``null`` in ``config patch`` reset a key to its default.

Unknown keys are ignored when a stored document is read (and dropped the next time
it is written), but every write refuses them first (:mod:`meerkat.config.keys`), so
a typo is an error naming its key path, never a silent no-op. Type checks are strict (no ``"3"`` for ``3``,
no ``true`` for ``1``); range checks follow in :func:`config_from_dict`.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec

from meerkat.config.durations import parse_duration
from meerkat.errors import InvalidParams
from meerkat.validation import MAX_OUTPUT_TOKENS, MAX_STORED_INT, json_kind

__all__ = [
    "AgentConfig",
    "BudgetConfig",
    "LimitsConfig",
    "RetryConfig",
    "ToolsConfig",
    "RestConfig",
    "MockConfig",
    "PostgresStorageConfig",
    "StorageConfig",
    "Config",
    "config_from_dict",
    "config_to_dict",
]


def _most(maximum: float) -> msgspec.Meta:
    """The upper bound of a number, checked on every write and shown in ``docs/config.md``.

    Lower bounds (``> 0``, ``>= 0``) are checked by :func:`_validate`, whose messages say
    why; the upper ones keep a value inside what the code can use: a count the stores keep
    as a signed 64-bit integer, a wait a person would still call a wait.
    """
    return msgspec.Meta(le=maximum)


#: Bounds of the ``[...]`` numbers (see :func:`_most`).
_U32 = 2**32 - 1
_Count = Annotated[int, _most(MAX_STORED_INT)]
_SmallCount = Annotated[int, _most(_U32)]
#: One day: the longest retry wait or provider timeout.
_Millis = Annotated[int, _most(86_400_000)]


class _Section(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every section: immutable, keyword-only, unknown keys ignored."""


class AgentConfig(_Section, frozen=True, kw_only=True):
    """``[agent]``: the model and how a turn runs."""

    #: Empty means "resolve the default model" (catalog / ``[models]``).
    model: str = ""
    max_tokens_per_turn: Annotated[int, _most(MAX_OUTPUT_TOKENS)] = 16384
    system_prompt: str | None = None
    #: At most 2, the most any provider takes (the catalog's params_schema).
    temperature: Annotated[float, _most(2.0)] | None = None
    max_turns: _SmallCount = 100
    budget_warning_threshold: float = 0.8
    #: Passed through to the provider untouched (e.g. ``reasoning_effort``).
    provider_params: dict[str, Any] = msgspec.field(default_factory=dict)


class BudgetConfig(_Section, frozen=True, kw_only=True):
    """``[budget]``: per-session limits. ``max_tokens`` is enforced by this host."""

    max_tokens: _Count | None = None
    max_duration: str | None = None
    max_tool_calls: _SmallCount | None = None


class LimitsConfig(_Section, frozen=True, kw_only=True):
    """``[limits]``: run-level limits (token budget, wall clock, session count)."""

    budget: _Count | None = None
    max_duration: str | None = None
    max_turn_duration: str | None = None
    max_sessions: _Count | None = None
    #: Events the durable log keeps per session (default 10,000); older ones are pruned.
    event_retention: _Count | None = None
    #: External events that may wait for one session at once (default 64).
    inbox_capacity: _Count | None = None


class RetryConfig(_Section, frozen=True, kw_only=True):
    """``[retry]``: exponential backoff for provider calls."""

    #: At most 100: with the delays bounded too, the waits stay finite numbers.
    max_retries: Annotated[int, _most(100)] = 3
    initial_delay_ms: _Millis = 500
    max_delay_ms: _Millis = 30000
    multiplier: Annotated[float, _most(100.0)] = 2.0
    #: Least wait after a rate limit (429), whatever ``retry-after`` says (upstream: 30 s).
    rate_limit_floor_ms: _Millis = 30000
    #: Time allowed to open a connection to a provider.
    connect_timeout_ms: _Millis = 10000
    #: Longest wait for a provider's response headers once connected (a server that accepts and never answers).
    first_byte_timeout_ms: _Millis = 60000
    #: Longest silence allowed on a provider's stream before the call fails as a timeout.
    stream_inactivity_timeout_ms: _Millis = 300000


class ToolsConfig(_Section, frozen=True, kw_only=True):
    """``[tools]``: built-in tools and tool-call concurrency."""

    builtins_enabled: bool = True
    default_timeout_secs: Annotated[float, _most(86_400.0)] = 600.0
    max_concurrent: Annotated[int, _most(1024)] = 10


class RestConfig(_Section, frozen=True, kw_only=True):
    """``[rest]``: the fallback listen address of ``rkat-rest``."""

    host: str = "127.0.0.1"
    port: int = 8080


class MockConfig(_Section, frozen=True, kw_only=True):
    """``[mock]``: pacing of the offline mock provider's stream."""

    #: The same bounds as the mock's ``provider_params`` (``providers/catalog.py``).
    token_delay_ms: Annotated[float, _most(60_000.0)] = 0.0
    first_token_latency_ms: Annotated[float, _most(600_000.0)] = 0.0


class PostgresStorageConfig(_Section, frozen=True, kw_only=True):
    """``[storage.postgres]``: a postgres realm's connections, read when a host opens the realm."""

    pool_size: int = 4


class StorageConfig(_Section, frozen=True, kw_only=True):
    """``[storage]``: how the realm's store is reached."""

    postgres: PostgresStorageConfig = msgspec.field(default_factory=PostgresStorageConfig)


#: The most connections ``storage.postgres.pool_size`` may ask for, per host.
MAX_POOL_SIZE = 100


class Config(_Section, frozen=True, kw_only=True):
    """A whole realm config document; ``Config()`` is the default config."""

    agent: AgentConfig = msgspec.field(default_factory=AgentConfig)
    budget: BudgetConfig = msgspec.field(default_factory=BudgetConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    retry: RetryConfig = msgspec.field(default_factory=RetryConfig)
    tools: ToolsConfig = msgspec.field(default_factory=ToolsConfig)
    rest: RestConfig = msgspec.field(default_factory=RestConfig)
    #: Per-provider default model ids (``{"anthropic": "claude-..."}``) or custom model tables.
    models: dict[str, Any] = msgspec.field(default_factory=dict)
    self_hosted: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Per-provider endpoint settings: ``[providers.anthropic] base_url = "..."`` (never keys).
    providers: dict[str, Any] = msgspec.field(default_factory=dict)
    provider_tools: dict[str, Any] = msgspec.field(default_factory=dict)
    mock: MockConfig = msgspec.field(default_factory=MockConfig)
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)


def config_from_dict(data: Any) -> Config:
    """Build a validated :class:`Config` from a JSON/TOML object.

    Raises :class:`InvalidParams` whose message names the offending key, e.g.
    ``Invalid config: Expected `int`, got `str` - at `$.agent.max_tokens_per_turn```
    or ``Invalid config: agent.max_turns must be > 0 (got 0)``.
    """
    if not isinstance(data, dict):
        raise InvalidParams(f"Invalid config: expected an object at the top level, got {json_kind(data)}")
    try:
        config = msgspec.convert(data, Config, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidParams(f"Invalid config: {exc}") from None
    _validate(config)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    """The full document, every default filled in; ``None`` stays ``None`` (JSON ``null``)."""
    result = msgspec.to_builtins(config)
    assert isinstance(result, dict)
    return result


def _validate(config: Config) -> None:
    """Range checks the type system cannot express; the first failure wins."""
    agent, retry, mock = config.agent, config.retry, config.mock
    _positive("agent.max_tokens_per_turn", agent.max_tokens_per_turn)
    _positive("agent.max_turns", agent.max_turns)
    # Written so NaN fails too: every comparison with NaN is false.
    if not 0 < agent.budget_warning_threshold <= 1:
        _fail("agent.budget_warning_threshold", "must be in (0, 1]", agent.budget_warning_threshold)
    if agent.temperature is not None and not (math.isfinite(agent.temperature) and agent.temperature >= 0):
        _fail("agent.temperature", "must be a finite number >= 0", agent.temperature)
    _positive("budget.max_tokens", config.budget.max_tokens)
    _non_negative("budget.max_tool_calls", config.budget.max_tool_calls)
    _positive("limits.budget", config.limits.budget)
    _positive("limits.max_sessions", config.limits.max_sessions)
    _positive("limits.event_retention", config.limits.event_retention)
    _positive("limits.inbox_capacity", config.limits.inbox_capacity)
    _non_negative("retry.max_retries", retry.max_retries)
    _non_negative("retry.initial_delay_ms", retry.initial_delay_ms)
    _non_negative("retry.max_delay_ms", retry.max_delay_ms)
    _non_negative("retry.rate_limit_floor_ms", retry.rate_limit_floor_ms)
    _positive("retry.connect_timeout_ms", retry.connect_timeout_ms)
    _positive("retry.first_byte_timeout_ms", retry.first_byte_timeout_ms)
    _positive("retry.stream_inactivity_timeout_ms", retry.stream_inactivity_timeout_ms)
    if not (math.isfinite(retry.multiplier) and retry.multiplier > 0):
        _fail("retry.multiplier", "must be a finite number > 0", retry.multiplier)
    if not (math.isfinite(config.tools.default_timeout_secs) and config.tools.default_timeout_secs > 0):
        _fail("tools.default_timeout_secs", "must be a finite number > 0", config.tools.default_timeout_secs)
    if config.tools.max_concurrent < 1:
        _fail("tools.max_concurrent", "must be >= 1", config.tools.max_concurrent)
    if not 1 <= config.storage.postgres.pool_size <= MAX_POOL_SIZE:
        _fail("storage.postgres.pool_size", f"must be in 1..{MAX_POOL_SIZE}", config.storage.postgres.pool_size)
    if not 0 <= config.rest.port <= 65535:
        _fail("rest.port", "must be in 0..65535", config.rest.port)
    _non_negative("mock.token_delay_ms", mock.token_delay_ms)
    _non_negative("mock.first_token_latency_ms", mock.first_token_latency_ms)
    for key, duration in (("budget.max_duration", config.budget.max_duration),
                          ("limits.max_duration", config.limits.max_duration),
                          ("limits.max_turn_duration", config.limits.max_turn_duration)):
        if duration is not None:
            parse_duration(duration, key)
    _validate_endpoints(config.providers)


#: Providers whose endpoint ``[providers.NAME]`` may override.
_ENDPOINT_PROVIDERS = ("anthropic", "openai", "gemini")


def _validate_endpoints(providers: dict[str, Any]) -> None:
    """``[providers.NAME]`` holds only ``base_url``; keys live in environment variables, never here."""
    for name, section in providers.items():
        key = f"providers.{name}"
        if name not in _ENDPOINT_PROVIDERS:
            _fail(key, f"is not a provider with a configurable endpoint ({', '.join(_ENDPOINT_PROVIDERS)})", name)
        if not isinstance(section, dict):
            _fail(key, "must be a table", section)
        for field_name, value in section.items():
            if field_name != "base_url":
                hint = (" (API keys are read from environment variables and never stored in config)"
                        if "key" in field_name.lower() or "token" in field_name.lower() else "")
                raise InvalidParams(f"Invalid config: unknown key {key}.{field_name}{hint}",
                                    details={"key": f"{key}.{field_name}"})
            if not (isinstance(value, str) and value.startswith(("http://", "https://"))):
                _fail(f"{key}.base_url", "must be an http(s) URL", value)


def _positive(key: str, value: int | None) -> None:
    """An optional count that, when set, must be above zero (upstream rejects a set 0)."""
    if value is not None and value <= 0:
        _fail(key, "must be > 0", value)


def _non_negative(key: str, value: float | None) -> None:
    """An optional amount that, when set, must be a finite number >= 0."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        _fail(key, "must be >= 0", value)


def _fail(key: str, rule: str, value: object) -> None:
    raise InvalidParams(f"Invalid config: {key} {rule} (got {value!r})", details={"key": key})
