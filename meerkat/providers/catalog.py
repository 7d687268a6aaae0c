"""The model catalog: which models exist, who serves them, and what they accept.

The wire shape is upstream's ``models/catalog`` result (``contract_version`` as
an object, providers with ``default_model_id`` and models with a ``profile``).
:func:`catalog_wire` adds the realm's ``[self_hosted.models]`` aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meerkat.validation import MAX_OUTPUT_TOKENS, MAX_STORED_INT

__all__ = ["CONTRACT_VERSION", "ModelEntry", "CATALOG", "PROVIDER_DEFAULTS", "PROVIDER_PARAMS", "find_model",
           "params_for", "params_json_schema", "self_hosted_aliases", "self_hosted_default", "catalog_wire"]

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
            "image_generation": False, "params_schema": params_json_schema(self.params_schema), "beta_headers": [],
        }
        return wire


# -- provider_params each model accepts (name -> JSON Schema fragment) ----------

#: Token counts and top_k are u32 on the vendors' wire, as the turn's ``max_tokens`` is.
_U32 = MAX_OUTPUT_TOKENS
_I64 = MAX_STORED_INT
_TEMPERATURE_2 = {"temperature": {"type": "number", "minimum": 0, "maximum": 2}}
_SAMPLING = {"top_p": {"type": "number", "minimum": 0, "maximum": 1},
             "max_output_tokens": {"type": "integer", "minimum": 1, "maximum": _U32},
             "stop_sequences": {"type": "array", "items": {"type": "string"}}}
_REASONING_SWITCH = {"reasoning": {"type": "string", "enum": ["emit", "off"]}}

ANTHROPIC_PARAMS: dict[str, Any] = {
    # Current Claude models (and the SDK) take no temperature/top_p/top_k: effort steers them.
    **{k: v for k, v in _SAMPLING.items() if k != "top_p"}, **_REASONING_SWITCH,
    "reasoning_effort": {"type": "string", "enum": ["low", "medium", "high", "xhigh", "max"]},
    "thinking_budget_tokens": {"type": "integer", "minimum": 1024, "maximum": _U32},
}
OPENAI_PARAMS: dict[str, Any] = {
    # The Responses API takes no stop sequences.
    **_TEMPERATURE_2, **{k: v for k, v in _SAMPLING.items() if k != "stop_sequences"}, **_REASONING_SWITCH,
    "reasoning_effort": {"type": "string", "enum": ["none", "minimal", "low", "medium", "high", "xhigh"]},
    "reasoning_summary": {"type": "string", "enum": ["auto", "concise", "detailed"]},
    "verbosity": {"type": "string", "enum": ["low", "medium", "high"]},
}
GEMINI_PARAMS: dict[str, Any] = {
    **_TEMPERATURE_2, **_SAMPLING, **_REASONING_SWITCH,
    "top_k": {"type": "integer", "minimum": 1, "maximum": _U32},
    "thinking_budget_tokens": {"type": "integer", "minimum": -1, "maximum": _U32},
    "thinking_level": {"type": "string", "enum": ["minimal", "low", "medium", "high"]},
}
SELF_HOSTED_PARAMS: dict[str, Any] = {
    **_TEMPERATURE_2, **_SAMPLING, **_REASONING_SWITCH,
    "top_k": {"type": "integer", "minimum": 0, "maximum": _U32},
    "seed": {"type": "integer", "minimum": -_I64 - 1, "maximum": _I64},
    "reasoning_effort": {"type": "string", "enum": ["none", "minimal", "low", "medium", "high", "xhigh"]},
    "extra_body": {"type": "object"},
}
# Bounded so that one request cannot freeze or exhaust the host: a reply of 10**12 words
# took the event loop for half a minute and then all memory.
MOCK_PARAMS_SCHEMA: dict[str, Any] = {
    "reply": {"type": "string", "maxLength": 1_000_000}, "reply_words": {"type": "integer", "minimum": 0,
                                                                         "maximum": 100_000},
    "token_delay_ms": {"type": "number", "minimum": 0, "maximum": 60_000},
    "first_token_latency_ms": {"type": "number", "minimum": 0, "maximum": 600_000},
    "fail": {"type": "string", "maxLength": 10_000},
}

#: What a model of each provider accepts when the catalog does not list it.
PROVIDER_PARAMS: dict[str, dict[str, Any]] = {
    "anthropic": ANTHROPIC_PARAMS, "openai": OPENAI_PARAMS, "gemini": GEMINI_PARAMS,
    "self_hosted": SELF_HOSTED_PARAMS, "mock": MOCK_PARAMS_SCHEMA,
}

_NO_SAMPLING = ("temperature", "top_p")
_NO_THINKING = ("thinking_budget_tokens", "reasoning")


def _without(params: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in names}


def _claude(model_id: str, name: str, tier: str, window: int, output: int) -> ModelEntry:
    return ModelEntry(model_id, "anthropic", name, tier, window, output, supports_temperature=False,
                      supports_thinking=True, supports_reasoning=True, vision=True, params_schema=ANTHROPIC_PARAMS)


def _gpt(model_id: str, name: str, tier: str, window: int, output: int) -> ModelEntry:
    # The GPT-5 family reasons; reasoning models refuse temperature and top_p.
    return ModelEntry(model_id, "openai", name, tier, window, output, supports_temperature=False,
                      supports_reasoning=True, vision=True, params_schema=_without(OPENAI_PARAMS, *_NO_SAMPLING))


def _gemini(model_id: str, name: str, tier: str, window: int, output: int) -> ModelEntry:
    return ModelEntry(model_id, "gemini", name, tier, window, output, supports_thinking=True, vision=True,
                      params_schema=GEMINI_PARAMS)


CATALOG: tuple[ModelEntry, ...] = (
    _claude("claude-opus-4-6", "Claude Opus 4.6", "recommended", 200_000, 128_000),
    _claude("claude-sonnet-4-6", "Claude Sonnet 4.6", "recommended", 200_000, 64_000),
    _claude("claude-opus-4-7", "Claude Opus 4.7", "supported", 200_000, 128_000),
    _claude("claude-opus-5", "Claude Opus 5", "supported", 1_000_000, 128_000),
    _claude("claude-opus-4-5", "Claude Opus 4.5", "supported", 200_000, 64_000),
    _claude("claude-sonnet-4-5", "Claude Sonnet 4.5", "supported", 200_000, 64_000),
    _claude("claude-haiku-4-5", "Claude Haiku 4.5", "supported", 200_000, 64_000),
    _claude("claude-haiku-4-5-20251001", "Claude Haiku 4.5 (2025-10-01)", "supported", 200_000, 64_000),
    _gpt("gpt-5.5", "GPT-5.5", "recommended", 400_000, 128_000),
    _gpt("gpt-5.5-pro", "GPT-5.5 Pro", "supported", 400_000, 128_000),
    _gpt("gpt-5.6", "GPT-5.6", "supported", 400_000, 128_000),
    _gpt("gpt-5.4", "GPT-5.4", "supported", 400_000, 128_000),
    _gpt("gpt-5.4-mini", "GPT-5.4 mini", "supported", 400_000, 128_000),
    _gpt("gpt-5.3-codex", "GPT-5.3 Codex", "supported", 400_000, 128_000),
    _gemini("gemini-3-flash-preview", "Gemini 3 Flash (preview)", "recommended", 1_048_576, 65_536),
    _gemini("gemini-3.1-pro-preview", "Gemini 3.1 Pro (preview)", "supported", 1_048_576, 65_536),
    _gemini("gemini-3.1-flash-lite-preview", "Gemini 3.1 Flash-Lite (preview)", "supported", 1_048_576, 65_536),
    _gemini("gemini-3.5-flash", "Gemini 3.5 Flash", "supported", 1_048_576, 65_536),
    ModelEntry("mock", "mock", "Mock (offline)", "recommended", 1_000_000, 1_000_000, params_schema=MOCK_PARAMS_SCHEMA),
)

#: The default model of each provider.
PROVIDER_DEFAULTS = {"anthropic": "claude-opus-4-6", "openai": "gpt-5.5", "gemini": "gemini-3-flash-preview",
                     "mock": "mock"}

_BY_ID = {entry.id: entry for entry in CATALOG}


def params_json_schema(params: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a ``provider_params`` object accepting exactly ``params``."""
    return {"type": "object", "properties": params, "additionalProperties": False}


def params_for(model: str, provider: str) -> dict[str, Any]:
    """The provider_params ``model`` on ``provider`` accepts (name -> JSON Schema fragment)."""
    entry = _BY_ID.get(model)
    if entry is not None and entry.provider == provider:
        return entry.params_schema
    return PROVIDER_PARAMS.get(provider, {})


def find_model(model_id: str) -> ModelEntry | None:
    """The catalogued entry for ``model_id``, if any."""
    return _BY_ID.get(model_id)


def self_hosted_aliases(self_hosted: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The realm's ``[self_hosted.models]`` aliases (alias -> its table)."""
    aliases = (self_hosted or {}).get("models") or {}
    if not isinstance(aliases, dict):
        return {}
    return {str(alias): (spec if isinstance(spec, dict) else {}) for alias, spec in aliases.items()}


def self_hosted_default(self_hosted: dict[str, Any] | None) -> str | None:
    """``self_hosted.default_model``, else the only alias; None when that is ambiguous or empty."""
    aliases = self_hosted_aliases(self_hosted)
    chosen = (self_hosted or {}).get("default_model")
    if isinstance(chosen, str) and chosen in aliases:
        return chosen
    return next(iter(aliases)) if len(aliases) == 1 else None


def _alias_wire(alias: str, spec: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": alias, "display_name": str(spec.get("display_name") or alias),
                             "tier": spec.get("tier") if spec.get("tier") in ("recommended", "supported") else "supported"}
    for key in ("context_window", "max_output_tokens"):
        if isinstance(spec.get(key), int) and not isinstance(spec.get(key), bool):
            entry[key] = spec[key]
    if isinstance(spec.get("server"), str):
        entry["server_id"] = spec["server"]
    flags = {name: bool(spec.get(name, default)) for name, default in
             (("supports_temperature", True), ("supports_thinking", False), ("supports_reasoning", False),
              ("vision", False))}
    entry["profile"] = {
        "model_family": str(spec.get("family") or spec.get("remote_model") or alias), **flags,
        "supports_web_search": False, "image_input": flags["vision"], "image_tool_results": flags["vision"],
        "inline_video": False, "realtime": False, "image_generation": False,
        "params_schema": params_json_schema(SELF_HOSTED_PARAMS), "beta_headers": [],
    }
    return entry


def catalog_wire(self_hosted: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``models/catalog`` result: built-in models plus ``[self_hosted.models]`` aliases."""
    providers: list[dict[str, Any]] = []
    for provider, default in PROVIDER_DEFAULTS.items():
        models = [entry.to_wire() for entry in CATALOG if entry.provider == provider]
        providers.append({"provider": provider, "default_model_id": default, "models": models})
    aliases = self_hosted_aliases(self_hosted)
    if aliases:
        models = [_alias_wire(alias, spec) for alias, spec in sorted(aliases.items())]
        default = self_hosted_default(self_hosted) or models[0]["id"]
        providers.append({"provider": "self_hosted", "default_model_id": default, "models": models})
    return {"contract_version": dict(CONTRACT_VERSION), "providers": providers}
