"""Which provider serves a model, and building provider instances.

Resolution order for a session's model and provider:

1. an explicit ``model`` with an explicit ``provider``: taken as given;
2. an explicit ``model`` alone: the provider is inferred from the name
   (``mock*`` -> mock, ``claude-*`` -> anthropic, ``gpt-*``/``o1``-style ->
   openai, ``gemini-*`` -> gemini); an unknown name is an error asking for a provider;
3. no model: config ``agent.model`` (inferred the same way), else the offline
   ``mock`` model, so a new user runs everything without a key.

Only ``mock`` is built into this release's provider table; the real providers
(anthropic, openai, gemini, self_hosted) are added by their own modules. A turn on
a provider that is not available fails with PROVIDER_ERROR naming the way out.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import InvalidParams, ProviderError
from .base import Provider
from .mock import MOCK_PARAMS, MockProvider

__all__ = ["KNOWN_PROVIDERS", "DEFAULT_MODEL", "resolve_model", "build_provider", "validate_provider_params"]

#: Provider names users may select.
KNOWN_PROVIDERS = ("mock", "anthropic", "openai", "gemini", "self_hosted")
#: The model used when nothing chooses one.
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


def _infer(model: str) -> str | None:
    for pattern, provider in _PREFIXES:
        if pattern.match(model):
            return provider
    return None


def resolve_model(model: str | None, provider: str | None, config_model: str = "") -> tuple[str, str]:
    """Return ``(model, provider)`` for a session, or raise InvalidParams saying what to add."""
    if provider is not None and provider not in KNOWN_PROVIDERS:
        raise InvalidParams(f"unknown provider {provider!r}: expected one of {', '.join(KNOWN_PROVIDERS)}")
    if model is not None and not (isinstance(model, str) and model.strip()):
        raise InvalidParams("model must be a non-empty string")
    chosen = model or config_model or None
    if chosen is None:
        if provider in (None, "mock"):
            return DEFAULT_MODEL, "mock"
        raise InvalidParams(f"no model given for provider {provider!r}: pass a model")
    inferred = _infer(chosen)
    if provider is None:
        if inferred is None:
            raise InvalidParams(f"cannot infer provider from model {chosen!r}; specify a provider")
        return chosen, inferred
    if inferred is not None and inferred != provider and provider != "self_hosted":
        raise InvalidParams(
            f"model {chosen!r} belongs to provider {inferred!r}, not provider {provider!r}"
        )
    return chosen, provider


def validate_provider_params(provider: str, params: Any) -> dict[str, Any]:
    """Check ``provider_params`` is an object (and, for mock, only known keys)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidParams("provider_params must be an object")
    if provider == "mock":
        unknown = sorted(set(params) - MOCK_PARAMS)
        if unknown:
            raise InvalidParams(
                f"unknown provider_params for mock: {', '.join(unknown)} (accepted: {', '.join(sorted(MOCK_PARAMS))})"
            )
    return dict(params)


def build_provider(name: str, settings: dict[str, Any] | None = None) -> Provider:
    """A provider instance for ``name``; PROVIDER_ERROR if it is not available here."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ProviderError(
            f"provider {name!r} is not available in this build; use --provider mock "
            f"(the offline provider) or a build with {name} support"
        )
    return factory(settings or {})


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``name`` buildable (used by the real provider modules and by tests)."""
    _FACTORIES[name] = factory
