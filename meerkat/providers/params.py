"""Checking ``provider_params`` against the catalog's schema fragments.

The catalog describes each accepted parameter with a small JSON Schema
fragment (``type``, ``enum``, ``minimum``, ``maximum``, ``items``); this module
checks a params object against them and names the first bad parameter.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidParams

__all__ = ["check_params"]

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,),
}


def _type_ok(value: Any, expected: str) -> bool:
    if isinstance(value, bool) and expected != "boolean":
        return False  # JSON true is not the number 1
    return isinstance(value, _TYPES.get(expected, (object,)))


def _problem(value: Any, schema: dict[str, Any]) -> str | None:
    expected = schema.get("type")
    if isinstance(expected, str) and not _type_ok(value, expected):
        return f"must be {'an' if expected[0] in 'aeiou' else 'a'} {expected} (got {value!r})"
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {', '.join(map(str, schema['enum']))} (got {value!r})"
    if "minimum" in schema and value < schema["minimum"]:
        return f"must be >= {schema['minimum']} (got {value!r})"
    if "maximum" in schema and value > schema["maximum"]:
        return f"must be <= {schema['maximum']} (got {value!r})"
    if "maxLength" in schema and isinstance(value, str) and len(value) > schema["maxLength"]:
        return f"must be at most {schema['maxLength']} characters (got {len(value)})"
    items = schema.get("items")
    if isinstance(items, dict) and isinstance(value, list):
        for index, item in enumerate(value):
            problem = _problem(item, items)
            if problem:
                return f"item {index} {problem}"
    return None


def check_params(params: dict[str, Any], accepted: dict[str, Any], owner: str) -> None:
    """Raise InvalidParams naming the first parameter ``owner`` does not accept or whose value is wrong."""
    for name, value in params.items():
        schema = accepted.get(name)
        if schema is None:
            allowed = ", ".join(sorted(accepted)) or "none"
            raise InvalidParams(f"provider_params.{name} is not accepted by {owner} (accepted: {allowed})",
                                details={"param": name})
        problem = _problem(value, schema)
        if problem:
            raise InvalidParams(f"provider_params.{name} {problem}", details={"param": name})
