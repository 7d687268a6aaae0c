"""Wire parameters of create/turn/config requests, mapped to service keyword arguments.

``rkat-rpc``, ``rkat-rest`` and ``rkat-mcp`` take the same JSON fields for a new
session or a turn. They are picked out here, once, so every surface accepts the
same names and reports a wrong type with the same message naming the field. Deep
checks (model/provider resolution, provider_params against the catalog, budgets)
stay in the actors, which every surface reaches anyway.
"""

from __future__ import annotations

from typing import Any

from meerkat.errors import InvalidParams
from meerkat.validation import (MAX_OUTPUT_TOKENS, MAX_STORED_INT, json_kind, validate_labels, validate_optional_positive_int,
                                validate_prompt)

__all__ = ["DISABLE_SYSTEM_PROMPT", "require_object", "require_prompt", "turn_options",
           "create_options", "config_write"]


def require_object(params: Any, what: str = "params") -> dict[str, Any]:
    """``params`` itself if it is a JSON object (``None`` counts as empty)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InvalidParams(f"{what} must be an object, got {json_kind(params)}")
    return params


def require_prompt(params: dict[str, Any]) -> str | list[dict[str, Any]]:
    """The ``prompt`` field, present and well formed."""
    if "prompt" not in params or params["prompt"] is None:
        raise InvalidParams("missing field `prompt`")
    return validate_prompt(params["prompt"])


def _optional_string(params: dict[str, Any], field: str) -> str | None:
    value = params.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidParams(f"{field} must be a string, got {json_kind(value)}")
    return value


def turn_options(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``SessionService.start_turn``; absent or null fields are left out."""
    options: dict[str, Any] = {}
    for field in ("model", "provider", "system_prompt"):
        value = _optional_string(params, field)
        if value is not None:
            options[field] = value
    max_tokens = validate_optional_positive_int(params.get("max_tokens"), "max_tokens", MAX_OUTPUT_TOKENS)
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    provider_params = params.get("provider_params")
    if provider_params is not None:
        options["provider_params"] = require_object(provider_params, "provider_params")
    instructions = params.get("additional_instructions")
    if instructions is not None:
        if not isinstance(instructions, list) or not all(isinstance(i, str) for i in instructions):
            raise InvalidParams("additional_instructions must be a list of strings")
        options["additional_instructions"] = instructions
    return options


#: The create-time ``system_prompt`` value that suppresses every prompt source (config default included).
DISABLE_SYSTEM_PROMPT = {"action": "disable"}


def create_options(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``SessionService.create_session`` (the turn options plus labels and budget).

    At create time ``system_prompt`` may also be ``{"action": "disable"}``: no system
    prompt at all, not even the realm config's ``agent.system_prompt``.
    """
    system_prompt = params.get("system_prompt")
    if isinstance(system_prompt, dict):
        if system_prompt != DISABLE_SYSTEM_PROMPT:
            raise InvalidParams('system_prompt must be a string, null or {"action": "disable"}')
        params = {**params, "system_prompt": None}
        options = turn_options(params)
        options["system_prompt"] = ""
    else:
        options = turn_options(params)
    labels = params.get("labels")
    if labels is not None:
        options["labels"] = validate_labels(labels)
    budget = validate_optional_positive_int(params.get("budget_max_tokens"), "budget_max_tokens")
    if budget is not None:
        options["budget_max_tokens"] = budget
    return options


def config_write(body: Any, key: str, *, allow_bare: bool) -> tuple[dict[str, Any], int | None]:
    """``(document, expected_generation)`` from a config set/patch body.

    Accepts the wrapped form ``{key: {...}, "expected_generation": N}``; with
    ``allow_bare`` (RPC) a body without ``key`` is the document itself.
    """
    body = require_object(body, "body")
    if key in body:
        document = body[key]
        expected = body.get("expected_generation")
        extra = sorted(k for k in body if k not in (key, "expected_generation"))
        if extra:
            raise InvalidParams(f"unknown field `{extra[0]}` (expected `{key}` and `expected_generation`)",
                                details={"field": extra[0]})
    elif allow_bare:
        document = {k: v for k, v in body.items() if k != "expected_generation"}
        expected = body.get("expected_generation")
    else:
        raise InvalidParams(f"missing field `{key}`")
    if not isinstance(document, dict):
        raise InvalidParams(f"{key} must be an object, got {json_kind(document)}")
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)
                                 or not 0 <= expected <= MAX_STORED_INT):
        raise InvalidParams(f"expected_generation must be an integer between 0 and {MAX_STORED_INT}, got {expected!r}")
    return document, expected
