"""``agent.model`` is checked when it is written, not when the first turn fails.

A model is known when the catalog lists it, the realm declares it as a
self-hosted alias (``[self_hosted.models.NAME]``), or the realm declares it in a
``[models."ID"]`` table with a ``provider``: the same sources a turn resolves a
model from, minus the name-prefix guess (which would let ``claude-sonet-4-6`` in).
"""

from __future__ import annotations

import difflib

from meerkat.config.schema import Config
from meerkat.errors import InvalidParams
from meerkat.providers.catalog import CATALOG, find_model, self_hosted_aliases

__all__ = ["check_config_model", "known_model_ids"]


def known_model_ids(config: Config) -> list[str]:
    """Every model id ``agent.model`` may name in this config."""
    ids = [entry.id for entry in CATALOG]
    ids.extend(self_hosted_aliases(config.self_hosted))
    ids.extend(name for name, table in config.models.items() if isinstance(table, dict) and table.get("provider"))
    return ids


def check_config_model(config: Config, *, previous: Config | None = None) -> None:
    """Raise INVALID_PARAMS when ``agent.model`` names no model this realm can serve.

    With ``previous``, an unchanged model is not re-checked: a patch of another key
    must not fail because of a model stored before this rule existed.
    """
    model = config.agent.model
    if not model or (previous is not None and previous.agent.model == model):
        return
    if find_model(model) is not None or model in known_model_ids(config)[len(CATALOG):]:
        return
    close = difflib.get_close_matches(model, known_model_ids(config), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise InvalidParams(
        f"Invalid config: agent.model {model!r} is not a known model{hint} (see `rkat models`; "
        f"declare a model the catalog lacks as [models.\"{model}\"] with provider = \"...\", "
        f"or as a self-hosted alias [self_hosted.models.{model}])",
        details={"key": "agent.model", "did_you_mean": close})
