"""Which provider serves a model, what it accepts, and building provider clients.

Resolution of a session's ``(model, provider)`` (:func:`resolve_model`):

1. a ``model`` with a ``provider``: taken as given, unless the catalog (or the
   realm's ``[self_hosted.models]`` / ``[models.ID]`` tables, or a well-known name
   prefix) says the model belongs to another provider: that mismatch is an error;
2. a ``model`` alone: its owner in the catalog, the realm's tables, then the name
   prefix (``claude-`` anthropic, ``gpt-``/``o1``... openai, ``gemini-`` gemini,
   ``mock`` mock); an unknown name is an error asking for a provider;
3. a ``provider`` alone: ``agent.model`` if it is that provider's, else
   ``[models] <provider> = "..."``, else the provider's catalog default;
4. nothing: ``agent.model``, else the default model of the first provider with
   an API key in the environment (anthropic, openai, gemini), else the offline
   ``mock`` model, so a new user and the tests run everything without a key.

Provider modules import their vendor SDK lazily: building the first client is
what imports ``anthropic`` or ``openai``, never importing this package.
"""

from __future__ import annotations

import gc
import importlib
import re
from typing import Any, Callable, Mapping

import trio

from ..errors import InvalidParams, ProviderError
from .base import Provider
from .catalog import PROVIDER_DEFAULTS, find_model, params_for, self_hosted_aliases, self_hosted_default
from .credentials import base_url_for, providers_with_keys, require_api_key
from .mock import MockProvider
from .params import check_params

__all__ = ["KNOWN_PROVIDERS", "DEFAULT_MODEL", "resolve_model", "build_provider", "register_provider",
           "validate_provider_params", "effective_provider_params", "provider_settings", "ProviderPool",
           "load_provider"]

#: Provider names users may select.
KNOWN_PROVIDERS = ("mock", "anthropic", "openai", "gemini", "self_hosted")
#: The model used when nothing chooses one and no provider has a key.
DEFAULT_MODEL = "mock"

_PREFIXES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^mock"), "mock"),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^(gpt-|o\d|chatgpt-)"), "openai"),
    (re.compile(r"^gemini-"), "gemini"),
]

ProviderFactory = Callable[[dict[str, Any]], Provider]
_FACTORIES: dict[str, ProviderFactory] = {
    "mock": lambda settings: MockProvider(**settings),
}
#: Real providers, imported on first use: name -> "module:factory".
_LAZY = {
    "anthropic": "meerkat.providers.anthropic:AnthropicProvider",
    "openai": "meerkat.providers.openai_responses:OpenAIResponsesProvider",
    "gemini": "meerkat.providers.gemini:GeminiProvider",
    "self_hosted": "meerkat.providers.self_hosted:build_self_hosted",
}


def _section(config: Any, name: str) -> dict[str, Any]:
    value = getattr(config, name, None) if config is not None else None
    return value if isinstance(value, dict) else {}


def _owner(model: str, config: Any) -> str | None:
    """Who serves ``model``: catalog, realm tables, then name prefix."""
    entry = find_model(model)
    if entry is not None:
        return entry.provider
    if model in self_hosted_aliases(_section(config, "self_hosted")):
        return "self_hosted"
    custom = _section(config, "models").get(model)
    if isinstance(custom, dict) and custom.get("provider") in KNOWN_PROVIDERS:
        return str(custom["provider"])
    for pattern, provider in _PREFIXES:
        if pattern.match(model):
            return provider
    return None


def _provider_default(provider: str, config: Any) -> str:
    configured = _section(config, "models").get(provider)
    if isinstance(configured, str) and configured:
        return configured
    if provider == "self_hosted":
        chosen = self_hosted_default(_section(config, "self_hosted"))
        if chosen is None:
            raise InvalidParams("no self-hosted model to use: declare [self_hosted.models.NAME] (and "
                                "self_hosted.default_model when there are several), or pass a model")
        return chosen
    return PROVIDER_DEFAULTS[provider]


def resolve_model(model: str | None, provider: str | None, config: Any = None) -> tuple[str, str]:
    """Return ``(model, provider)`` for a session, or raise InvalidParams saying what to add.

    ``config`` is the realm :class:`~meerkat.config.Config` (a bare string is read as
    ``agent.model``, for callers that only know that).
    """
    config_model = config if isinstance(config, str) else getattr(getattr(config, "agent", None), "model", "")
    config = None if isinstance(config, str) else config
    if provider == "self-hosted":
        provider = "self_hosted"
    if provider is not None and provider not in KNOWN_PROVIDERS:
        raise InvalidParams(f"unknown provider {provider!r}: expected one of {', '.join(KNOWN_PROVIDERS)}")
    if model is not None and not (isinstance(model, str) and model.strip()):
        raise InvalidParams("model must be a non-empty string")
    if model is None and provider is not None:
        owner = _owner(config_model, config) if config_model else None
        if config_model and owner in (provider, None):
            model = config_model
        else:
            return _provider_default(provider, config), provider
    chosen = model or config_model or None
    if chosen is None:
        for keyed in providers_with_keys():
            return _provider_default(keyed, config), keyed
        return DEFAULT_MODEL, "mock"
    owner = _owner(chosen, config)
    if provider is None:
        if owner is None:
            raise InvalidParams(
                f"cannot infer provider from model {chosen!r}; specify a provider "
                f"({', '.join(KNOWN_PROVIDERS)}) or use a catalogued model (see `rkat models`)")
        return chosen, owner
    if owner is not None and owner != provider:
        raise InvalidParams(f"model {chosen!r} belongs to provider {owner!r}, not provider {provider!r}")
    if provider == "self_hosted" and owner is None:
        raise InvalidParams(f"unknown self-hosted model {chosen!r}: declare it as [self_hosted.models.{chosen}] "
                            f"with a server and remote_model")
    return chosen, provider


def validate_provider_params(provider: str, params: Any, model: str | None = None) -> dict[str, Any]:
    """Check ``provider_params`` against what ``model`` on ``provider`` accepts; errors name the parameter."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidParams("provider_params must be an object")
    accepted = params_for(model or "", provider)
    check_params(params, accepted, f"{model or provider}")
    return dict(params)


def effective_provider_params(provider: str, model: str, params: dict[str, Any], config: Any) -> dict[str, Any]:
    """A turn's provider_params: the realm defaults the model accepts, overridden by the session's or turn's.

    Realm defaults (``agent.provider_params``, ``agent.temperature``) apply to every
    provider, so keys a model does not accept are skipped rather than failing its turns.
    """
    agent = getattr(config, "agent", None)
    accepted = params_for(model, provider)
    defaults: dict[str, Any] = {}
    temperature = getattr(agent, "temperature", None)
    if temperature is not None and "temperature" in accepted:
        defaults["temperature"] = temperature
    for key, value in (getattr(agent, "provider_params", None) or {}).items():
        if key in accepted:
            defaults[key] = value
    if not defaults:
        return params
    try:
        check_params(defaults, accepted, "agent.provider_params")
    except InvalidParams:
        return params  # a realm default of the wrong type must not break every turn
    return {**defaults, **params}


def provider_settings(provider: str, config: Any) -> dict[str, Any]:
    """What building ``provider`` needs from the realm config and the environment (key included).

    Raises PROVIDER_ERROR naming the variables to set when a hosted provider has no key.
    """
    if provider == "mock":
        mock = getattr(config, "mock", None)
        return {"token_delay_ms": getattr(mock, "token_delay_ms", 0.0),
                "first_token_latency_ms": getattr(mock, "first_token_latency_ms", 0.0)}
    retry = getattr(config, "retry", None)
    timeouts = {"connect_timeout_s": getattr(retry, "connect_timeout_ms", 10_000) / 1000,
                "read_timeout_s": getattr(retry, "stream_inactivity_timeout_ms", 300_000) / 1000,
                "first_byte_timeout_s": getattr(retry, "first_byte_timeout_ms", 60_000) / 1000}
    if provider == "self_hosted":
        from .credentials import find_api_key

        return {**timeouts, "self_hosted": _section(config, "self_hosted"), "api_key": find_api_key("self_hosted")}
    if provider not in _LAZY:
        raise ProviderError(f"provider {provider!r} is not available; use one of {', '.join(KNOWN_PROVIDERS)}")
    return {**timeouts, "api_key": require_api_key(provider),
            "base_url": base_url_for(provider, _section(config, "providers"))}


def _factory(name: str) -> ProviderFactory:
    factory = _FACTORIES.get(name)
    if factory is None and name in _LAZY:
        module, attr = _LAZY[name].split(":")
        factory = getattr(importlib.import_module(module), attr)
        # A vendor SDK brings ~100,000 objects (modules, functions, pydantic models) that live
        # as long as the process. Left to the cyclic GC, every full collection walks them all:
        # 100-400 ms with the loop (or, from a worker thread, the GIL) held. Frozen, they are
        # never walked; they are still freed by reference counting should they ever die.
        # Freezing takes every tracked object, garbage cycles not yet collected too (a retired
        # session's tasks, tracebacks), and a frozen cycle is never freed: collect them first
        # (once per provider and process). Even from a worker thread that full walk holds the
        # GIL (~100-250 ms here): the one stall of loading a provider left on the loop, the
        # import itself (1-3 s) no longer is (see load_provider).
        gc.collect()
        gc.freeze()
        _FACTORIES[name] = factory
    if factory is None:
        raise ProviderError(f"provider {name!r} is not available; use one of {', '.join(KNOWN_PROVIDERS)} "
                            f"(mock is the offline provider)")
    return factory


async def load_provider(name: str) -> None:
    """Import ``name``'s module (and with it its vendor SDK) in a worker thread, once.

    Importing an SDK takes 1-3 s of interpreter work; on the trio thread that stalls
    every session of the process. From a worker thread the loop keeps its turns (the
    import gives up the GIL between bytecodes and on file reads). Unknown names are
    left for :func:`build_provider` to refuse.
    """
    if name in _LAZY and name not in _FACTORIES:
        await trio.to_thread.run_sync(_factory, name)


def build_provider(name: str, settings: dict[str, Any] | None = None) -> Provider:
    """A provider instance for ``name`` built from ``settings`` (see :func:`provider_settings`)."""
    return _factory(name)(settings or {})


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``name`` buildable (used by tests that bring their own provider)."""
    _FACTORIES[name] = factory


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class ProviderPool:
    """Provider clients kept for reuse, so turns share HTTP connections; closed with their owner.

    One pool belongs to one trio run (a realm supervisor): vendor clients hold
    connection pools bound to the event loop, and must be closed explicitly
    because the SDKs' own finalizers only work under asyncio.
    """

    def __init__(self) -> None:
        self._providers: dict[Any, Provider] = {}

    def get(self, name: str, config: Any) -> Provider:
        """The provider ``name`` configured as ``config`` says, built on first use.

        Builds on the calling thread: from the event loop, use :meth:`aget`, which
        imports a vendor SDK in a worker thread first.
        """
        settings = provider_settings(name, config)
        key = (name, _freeze(settings))
        provider = self._providers.get(key)
        if provider is None:
            provider = self._providers[key] = build_provider(name, settings)
        return provider

    async def aget(self, name: str, config: Any) -> Provider:
        """:meth:`get` for the event loop: a missing key is refused before any import, and
        the first use of a vendor imports its SDK off the loop's thread."""
        provider_settings(name, config)  # raises PROVIDER_ERROR (naming the variables to set) first
        await load_provider(name)
        return self.get(name, config)

    async def aclose(self) -> None:
        """Close every client (their connections) and forget them."""
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
