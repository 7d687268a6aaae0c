"""docs/config.md is generated from the schema: every key documented, and the file current."""

from __future__ import annotations

from pathlib import Path

from meerkat.config.keys import known_key_paths
from meerkat.config.reference import EFFECTS, render, rows
from meerkat.config.schema import Config

ROOT = Path(__file__).resolve().parent.parent


def test_every_key_of_the_schema_says_what_it_does():
    keys = [key for key, _, _ in rows()]
    assert keys == known_key_paths(Config)
    assert [key for key in keys if not EFFECTS.get(key)] == []
    assert sorted(set(EFFECTS) - set(keys)) == []  # nothing documented that does not exist


def test_docs_config_md_is_current():
    assert (ROOT / "docs" / "config.md").read_text() == render(), \
        "docs/config.md is stale: run `python -m meerkat.config.reference > docs/config.md`"
    assert "| `retry.first_byte_timeout_ms` | integer (at most 86,400,000) | `60000` |" in render()
