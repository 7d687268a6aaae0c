"""Unknown config keys: found at any depth, named by their full path, with a did-you-mean.

A typo such as ``agnet.model`` or ``agent.max_tokens_pertur`` must never be dropped
in silence: the write would succeed, print a new generation, and change nothing.
Every write (``config set`` / ``config patch`` on every surface) therefore checks
the document's keys against the typed sections of :class:`~meerkat.config.Config`
before anything is stored. Free-form tables (``models``, ``self_hosted``,
``provider_tools``, ``agent.provider_params``) hold user-chosen names and are not
checked here; ``providers`` has its own rule in the schema.

Reading a stored file stays lenient (a key a newer version wrote must not make the
realm unreadable); ``rkat doctor`` reports such keys (:func:`unknown_keys`).
"""

from __future__ import annotations

import difflib
from typing import Any

import msgspec

from meerkat.errors import InvalidParams

__all__ = ["check_known_keys", "unknown_keys", "known_key_paths"]


def _struct_fields(struct_type: type) -> dict[str, Any]:
    """Field name -> field type of a msgspec Struct type."""
    info = msgspec.inspect.type_info(struct_type)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.name: f.type for f in info.fields}


def unknown_keys(data: Any, struct_type: type, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Every key of ``data`` the schema does not know: ``(full.key.path, [close matches])``."""
    found: list[tuple[str, list[str]]] = []
    if not isinstance(data, dict):
        return found
    fields = _struct_fields(struct_type)
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=3, cutoff=0.6)
            found.append((path, [f"{prefix}{name}" for name in close]))
            continue
        field_type = fields[key]
        if isinstance(field_type, msgspec.inspect.StructType) and isinstance(value, dict):
            found.extend(unknown_keys(value, field_type.cls, f"{path}."))
    return found


def check_known_keys(data: Any, struct_type: type) -> None:
    """Raise INVALID_PARAMS naming the first unknown key (its full path), with a did-you-mean."""
    found = unknown_keys(data, struct_type)
    if not found:
        return
    path, close = found[0]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    more = f" (and {len(found) - 1} more: {', '.join(p for p, _ in found[1:])})" if len(found) > 1 else ""
    raise InvalidParams(f"Invalid config: unknown key {path!r}{hint}{more}",
                        details={"key": path, "did_you_mean": close, "unknown_keys": [p for p, _ in found]})


def known_key_paths(struct_type: type, prefix: str = "") -> list[str]:
    """Every checked key path of the schema (``agent.model``, ``retry.max_retries``...)."""
    paths: list[str] = []
    for name, field_type in _struct_fields(struct_type).items():
        if isinstance(field_type, msgspec.inspect.StructType):
            paths.extend(known_key_paths(field_type.cls, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths
