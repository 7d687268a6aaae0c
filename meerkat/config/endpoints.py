"""Where API keys may be sent: who may change a provider's base URL.

A base URL in the config decides which server receives a provider's API key
(``x-api-key``, ``Authorization``). So it is the operator's decision, never a
network client's: a ``PATCH /config`` (or an MCP ``meerkat_config`` call) that points
``[providers.NAME] base_url`` or ``[self_hosted.servers.NAME] base_url`` somewhere new
would otherwise send the key there (a credential leak, and a request forgery).

The rule (docs/security.md):

* The environment (``RKAT_<NAME>_BASE_URL``, ``<NAME>_BASE_URL``) and config written
  on this machine with ``rkat config`` / ``rkat-rpc`` (a process of the realm's owner,
  on files only the owner may write) choose any base URL.
* Network surfaces (REST, MCP) may write every other key; a write that would set a
  key-bearing base URL to a value it does not already have is refused, unless the URL
  is the vendor's public endpoint or is listed in ``RKAT_ALLOWED_BASE_URLS``
  (comma-separated, set by the operator where the server runs). Removing a base URL
  (back to the vendor's endpoint) is always allowed.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from meerkat.config.merge_patch import apply_merge_patch
from meerkat.errors import InvalidParams

__all__ = ["ALLOWED_BASE_URLS_VARIABLE", "key_endpoints", "allowed_base_urls", "refuse_key_redirects"]

ALLOWED_BASE_URLS_VARIABLE = "RKAT_ALLOWED_BASE_URLS"

#: The vendors' public endpoints: a network client may always point a provider back there.
_PUBLIC_ENDPOINTS = frozenset({"https://api.anthropic.com", "https://api.openai.com/v1", "https://api.openai.com",
                               "https://generativelanguage.googleapis.com"})


def _normal(url: str) -> str:
    return url.strip().rstrip("/").lower()


def key_endpoints(document: Mapping[str, Any] | None) -> dict[str, str]:
    """Every base URL in a config document that receives an API key, by its key path."""
    found: dict[str, str] = {}
    if not isinstance(document, Mapping):
        return found
    providers = document.get("providers")
    if isinstance(providers, Mapping):
        for name, section in providers.items():
            if isinstance(section, Mapping) and isinstance(section.get("base_url"), str):
                found[f"providers.{name}.base_url"] = section["base_url"]
    self_hosted = document.get("self_hosted")
    servers = self_hosted.get("servers") if isinstance(self_hosted, Mapping) else None
    if isinstance(servers, Mapping):
        for name, server in servers.items():
            if isinstance(server, Mapping) and isinstance(server.get("base_url"), str):
                found[f"self_hosted.servers.{name}.base_url"] = server["base_url"]
    return found


def allowed_base_urls(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The URLs the operator allows network clients to choose (``RKAT_ALLOWED_BASE_URLS``)."""
    raw = (os.environ if environ is None else environ).get(ALLOWED_BASE_URLS_VARIABLE, "")
    return frozenset(_normal(url) for url in raw.split(",") if url.strip())


def refuse_key_redirects(current: Mapping[str, Any], document: Any, *, patch: bool, surface: str,
                         environ: Mapping[str, str] | None = None) -> None:
    """INVALID_PARAMS if writing ``document`` (a merge patch when ``patch``) from a network
    ``surface`` would send an API key somewhere the operator did not choose."""
    if not isinstance(document, Mapping):
        return  # not a config document: the write itself reports that
    after = key_endpoints(apply_merge_patch(dict(current), document) if patch else document)
    before = {path: _normal(url) for path, url in key_endpoints(current).items()}
    allowed = allowed_base_urls(environ) | _PUBLIC_ENDPOINTS
    for path, url in sorted(after.items()):
        if before.get(path) == _normal(url) or _normal(url) in allowed:
            continue
        raise InvalidParams(
            f"{path} decides where the provider's API key is sent, so {surface} may not change it "
            f"(to {url!r}). Set it on the server's machine instead: rkat config patch, or "
            f"RKAT_<PROVIDER>_BASE_URL in the server's environment; or allow this URL for network "
            f"clients with {ALLOWED_BASE_URLS_VARIABLE}.", details={"key": path})
