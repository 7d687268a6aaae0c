"""JSON merge patch (RFC 7396), the algorithm behind ``config patch``.

The rules, exactly as the RFC states them:

* a patch that is not an object replaces the target outright;
* an object patch is merged into the target (a non-object target counts as ``{}``):
  a ``null`` member removes that key, any other member is merged recursively.

Arrays are values like any other: a patch never merges into an array, it replaces it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply_merge_patch"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with the merge ``patch`` applied; neither argument is mutated.

    Mirrors the pseudo-code of RFC 7396 section 2, so ``apply_merge_patch({}, patch)``
    also strips every ``null`` out of an object ``patch`` (as the RFC's appendix shows).
    """
    if not isinstance(patch, dict):
        return patch
    # Copy instead of mutating: callers pass documents they still hold (the
    # current config), and a half-applied patch must never leak back into them.
    result: dict[Any, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result
