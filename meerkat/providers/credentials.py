"""API keys and endpoints of the real providers.

Keys come only from environment variables, in this order (the first non-empty
value wins; surrounding whitespace is ignored, and an empty value counts as unset):

=============  ==============================================================================
anthropic      ``RKAT_ANTHROPIC_API_KEY``, ``ANTHROPIC_API_KEY``
openai         ``RKAT_OPENAI_API_KEY``, ``OPENAI_API_KEY``
gemini         ``RKAT_GEMINI_API_KEY``, ``GEMINI_API_KEY``, ``RKAT_GOOGLE_API_KEY``, ``GOOGLE_API_KEY``
self_hosted    ``RKAT_SELF_HOSTED_API_KEY`` (optional: most local servers take no key)
=============  ==============================================================================

A key is read when a turn needs it, held only by the provider client, and never
written to the store, events, config or logs.

Base URLs: config ``[providers.NAME] base_url`` first, then ``RKAT_<NAME>_BASE_URL``,
then the vendor SDK's usual variable (``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``,
``GEMINI_BASE_URL``), then the vendor's public endpoint. Self-hosted servers take
theirs from ``[self_hosted.servers.NAME] base_url``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from ..errors import ProviderError

#: Hosted providers that cannot answer without a key (self-hosted servers mostly take none).
_KEY_REQUIRED = ("anthropic", "openai", "gemini")

__all__ = ["ensure_credentials", "KEY_VARIABLES", "DEFAULT_BASE_URLS", "find_api_key", "require_api_key", "base_url_for",
           "providers_with_keys"]

KEY_VARIABLES: dict[str, tuple[str, ...]] = {
    "anthropic": ("RKAT_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    "openai": ("RKAT_OPENAI_API_KEY", "OPENAI_API_KEY"),
    "gemini": ("RKAT_GEMINI_API_KEY", "GEMINI_API_KEY", "RKAT_GOOGLE_API_KEY", "GOOGLE_API_KEY"),
    "self_hosted": ("RKAT_SELF_HOSTED_API_KEY",),
}

DEFAULT_BASE_URLS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com",
}

_BASE_URL_VARIABLES: dict[str, tuple[str, ...]] = {
    "anthropic": ("RKAT_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"),
    "openai": ("RKAT_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
    "gemini": ("RKAT_GEMINI_BASE_URL", "GEMINI_BASE_URL"),
}


def _first_set(names: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def find_api_key(provider: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The provider's key from the environment, or None."""
    return _first_set(KEY_VARIABLES.get(provider, ()), os.environ if environ is None else environ)


def require_api_key(provider: str, environ: Mapping[str, str] | None = None) -> str:
    """The provider's key, or PROVIDER_ERROR saying which variables to set."""
    key = find_api_key(provider, environ)
    if key is None:
        names = " or ".join(KEY_VARIABLES[provider])
        raise ProviderError(
            f"no API key for provider {provider!r}: set {names}, "
            f"or use the offline mock provider (--provider mock / model \"mock\")",
            details={"provider": provider, "env": list(KEY_VARIABLES[provider])})
    return key


def ensure_credentials(provider: str, environ: Mapping[str, str] | None = None) -> None:
    """PROVIDER_ERROR now if ``provider`` needs a key that is not set (checked before a session is made)."""
    if provider in _KEY_REQUIRED:
        require_api_key(provider, environ)


def providers_with_keys(environ: Mapping[str, str] | None = None) -> list[str]:
    """The hosted providers (anthropic, openai, gemini, in that order) that have a key set."""
    return [p for p in ("anthropic", "openai", "gemini") if find_api_key(p, environ)]


def base_url_for(provider: str, endpoints: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> str:
    """The base URL to call for ``provider`` (see the module docstring for the order)."""
    section = (endpoints or {}).get(provider)
    if isinstance(section, dict) and isinstance(section.get("base_url"), str) and section["base_url"]:
        return str(section["base_url"]).rstrip("/")
    found = _first_set(_BASE_URL_VARIABLES.get(provider, ()), os.environ if environ is None else environ)
    return (found or DEFAULT_BASE_URLS[provider]).rstrip("/")
