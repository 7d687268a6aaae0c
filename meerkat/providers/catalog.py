"""The model catalog: which models exist, who serves them, and what they accept.

The wire shape is upstream's ``models/catalog`` result (``contract_version`` as
an object, providers with ``default_model_id`` and models with a ``profile``).
:func:`catalog_wire` adds the realm's ``[self_hosted.models]`` aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONTRACT_VERSION", "ModelEntry", "CATALOG", "PROVIDER_DEFAULTS", "find_model", "catalog_wire"]

#: The contract version this host speaks (the published SDK's).
CONTRACT_VERSION = {"major": 0, "minor": 9, "patch": 6}


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One catalogued model."""

    id: str
    provider: str
    display_name: str
    tier: str = "supported"  # "recommended" | "supported"
    context_window: int | None = None
    max_output_tokens: int | None = None
    supports_temperature: bool = True
    supports_thinking: bool = False
    supports_reasoning: bool = False
    vision: bool = False
    #: provider_params this model accepts: name -> JSON Schema fragment.
    params_schema: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The model's entry in ``models/catalog``."""
        wire: dict[str, Any] = {"id": self.id, "display_name": self.display_name, "tier": self.tier}
        if self.context_window is not None:
            wire["context_window"] = self.context_window
        if self.max_output_tokens is not None:
            wire["max_output_tokens"] = self.max_output_tokens
        wire["profile"] = {
            "model_family": self.id, "supports_temperature": self.supports_temperature,
            "supports_thinking": self.supports_thinking, "supports_reasoning": self.supports_reasoning,
            "supports_web_search": False, "vision": self.vision, "image_input": self.vision,
            "image_tool_results": self.vision, "inline_video": False, "realtime": False,
            "image_generation": False, "params_schema": self.params_schema, "beta_headers": [],
        }
        return wire


_MOCK_PARAMS = {
    "reply": {"type": "string"}, "reply_words": {"type": "integer", "minimum": 0},
    "token_delay_ms": {"type": "number", "minimum": 0}, "first_token_latency_ms": {"type": "number", "minimum": 0},
    "fail": {"type": "string"},
}

CATALOG: tuple[ModelEntry, ...] = (
    ModelEntry("claude-opus-4-6", "anthropic", "Claude Opus 4.6", "recommended", 200_000, 128_000,
               supports_thinking=True, vision=True),
    ModelEntry("claude-sonnet-4-6", "anthropic", "Claude Sonnet 4.6", "recommended", 200_000, 64_000,
               supports_thinking=True, vision=True),
    ModelEntry("gpt-5.5", "openai", "GPT-5.5", "recommended", 400_000, 128_000,
               supports_temperature=False, supports_reasoning=True, vision=True),
    ModelEntry("gemini-3-flash-preview", "gemini", "Gemini 3 Flash (preview)", "recommended", 1_048_576, 65_536,
               supports_thinking=True, vision=True),
    ModelEntry("mock", "mock", "Mock (offline)", "recommended", 1_000_000, 1_000_000, params_schema=_MOCK_PARAMS),
)

#: The default model of each provider.
PROVIDER_DEFAULTS = {"anthropic": "claude-opus-4-6", "openai": "gpt-5.5", "gemini": "gemini-3-flash-preview",
                     "mock": "mock"}

_BY_ID = {entry.id: entry for entry in CATALOG}


def find_model(model_id: str) -> ModelEntry | None:
    """The catalogued entry for ``model_id``, if any."""
    return _BY_ID.get(model_id)


def catalog_wire(self_hosted: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``models/catalog`` result: built-in models plus ``[self_hosted.models]`` aliases."""
    providers: list[dict[str, Any]] = []
    for provider, default in PROVIDER_DEFAULTS.items():
        models = [entry.to_wire() for entry in CATALOG if entry.provider == provider]
        providers.append({"provider": provider, "default_model_id": default, "models": models})
    aliases = (self_hosted or {}).get("models") or {}
    if isinstance(aliases, dict) and aliases:
        models = []
        for alias, spec in sorted(aliases.items()):
            spec = spec if isinstance(spec, dict) else {}
            entry: dict[str, Any] = {"id": alias, "display_name": str(spec.get("display_name") or alias),
                                     "tier": "supported"}
            if isinstance(spec.get("server"), str):
                entry["server_id"] = spec["server"]
            models.append(entry)
        providers.append({"provider": "self_hosted", "default_model_id": models[0]["id"], "models": models})
    return {"contract_version": dict(CONTRACT_VERSION), "providers": providers}
