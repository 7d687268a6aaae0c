"""Unknown fields in a REST request body are refused, naming the field (``"modle"`` is not ``"model"``).

Silently ignoring them ran a session on the default model when the client misspelt
``model``. The accepted fields are the documented ones: the properties of the
request's schema in the OpenAPI document, so the two cannot drift apart.
"""

from __future__ import annotations

import difflib
from typing import Any

from meerkat.errors import InvalidParams

from .openapi import request_fields

__all__ = ["reject_unknown_fields"]


def reject_unknown_fields(body: dict[str, Any], schema: str) -> None:
    """Raise INVALID_PARAMS (400) for the first field of ``body`` that ``schema`` does not declare."""
    allowed = request_fields(schema)
    for name in body:
        if name not in allowed:
            close = difflib.get_close_matches(str(name), sorted(allowed), n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise InvalidParams(f"unknown field `{name}` in the request body{hint}; accepted: "
                                f"{', '.join(sorted(allowed))}", details={"field": name})
