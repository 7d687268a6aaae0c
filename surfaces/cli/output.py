"""Writing machine-readable output."""

from __future__ import annotations

import json
from typing import Any

import asyncclick as click

__all__ = ["print_json"]


def print_json(value: Any) -> None:
    """``value`` as pretty JSON on stdout (non-ASCII kept readable)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
