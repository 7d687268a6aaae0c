"""OpenAPI schemas of ``PUT /config`` and ``PATCH /config``, generated from :class:`meerkat.config.Config`.

Every section is an object of known keys (``additionalProperties: false``): the
server refuses an unknown key at any depth, naming its path, so the document says
so. A patch may set any key or section to ``null`` (back to its default). Range
rules (``agent.max_turns`` > 0, a catalogued ``agent.model``, durations such as
``"90s"``) are the server's, listed in docs/config.md; a value that breaks one is
400 INVALID_PARAMS naming the key.
"""

from __future__ import annotations

from typing import Any

import msgspec

from meerkat.config.schema import Config
from meerkat.validation import MAX_STORED_INT

__all__ = ["config_schemas"]

_REF = "#/components/schemas/"
_GENERATION = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_STORED_INT,
               "description": "Compare-and-swap: refused with 409 unless this is the current generation."}


def _sections(prefix: str, nullable: bool) -> dict[str, Any]:
    """The config's struct schemas under ``prefix`` (closed objects; with ``nullable`` each key may be null)."""
    _, components = msgspec.json.schema_components([Config], ref_template=_REF + prefix + "{name}")
    out = {}
    for name, schema in components.items():
        properties = schema["properties"]
        if nullable:
            properties = {key: {"anyOf": [value, {"type": "null"}]} for key, value in properties.items()}
        out[prefix + name] = {**schema, "properties": properties, "additionalProperties": False}
    return out


def _write(kind: str, prefix: str, description: str, components: dict[str, Any]) -> dict[str, Any]:
    """``{kind: {...}, expected_generation?}`` or the bare document with an optional ``expected_generation``."""
    document = components[prefix + "Config"]
    return {"description": description, "oneOf": [
        {"type": "object", "properties": {kind: {"$ref": _REF + prefix + "Config"}, "expected_generation": _GENERATION},
         "required": [kind], "additionalProperties": False},
        {**document, "properties": {**document["properties"], "expected_generation": _GENERATION}},
    ]}


def config_schemas() -> dict[str, Any]:
    """``ConfigPut``, ``ConfigPatch`` and the section schemas they refer to."""
    put, patch = _sections("config.", nullable=False), _sections("configPatch.", nullable=True)
    return {
        **put, **patch,
        "ConfigPut": _write("config", "config.", "Either {\"config\": {...}, \"expected_generation\": N} or a bare "
                            "config object. Replaces the config; missing keys take their defaults.", put),
        "ConfigPatch": _write("patch", "configPatch.", "Either {\"patch\": {...}, \"expected_generation\": N} or a "
                              "bare RFC 7396 merge patch (null removes a key, restoring its default).", patch),
    }
