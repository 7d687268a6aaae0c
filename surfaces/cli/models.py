"""``rkat models``: the models this realm can use, as a table (or the catalog as JSON)."""

from __future__ import annotations

from typing import Any

import asyncclick as click

from .context import realm_options, service_for
from .output import print_json

__all__ = ["models_command"]


def _key_state(provider: str) -> str:
    """Whether the provider's API key is set in the environment (never the key itself)."""
    from meerkat.providers.credentials import KEY_VARIABLES, find_api_key

    if provider == "mock":
        return "not needed"
    names = KEY_VARIABLES.get(provider, ())
    if find_api_key(provider):
        return "yes"
    if provider == "self_hosted":
        return "optional"
    plain = [name for name in names if not name.startswith("RKAT_")]
    return f"no ({plain[0]})" if plain else "no"


def _rows(catalog: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for entry in catalog["providers"]:
        provider, default = entry["provider"], entry.get("default_model_id")
        key = _key_state(provider)
        for model in entry["models"]:
            window = model.get("context_window")
            rows.append((provider, model["id"] + (" *" if model["id"] == default else ""), model.get("tier", ""),
                         f"{window:,}" if isinstance(window, int) else "-", key))
    return rows


@click.command("models")
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")),
              default="text", show_default=True, help="text: a table; json: the whole catalog (models/catalog).")
@realm_options
@click.pass_context
async def models_command(ctx: click.Context, output_format: str) -> None:
    """List the models this realm can use: provider, model (* = the provider's default), tier,
    context window, and whether the provider's API key is set.

    The built-in catalog plus the realm's self-hosted models. Without any key,
    the offline mock model answers.

    \b
    Examples:
      rkat models
      rkat models --format json | jq -r '.providers[].models[].id'
    """
    async with service_for(ctx, read_only=True) as service:
        catalog = await service.models_catalog()
    if output_format == "json":
        print_json(catalog)
        return
    header = ("PROVIDER", "MODEL", "TIER", "CONTEXT", "KEY SET")
    rows = [header, *_rows(catalog)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    click.echo("\n* the provider's default model. Use one with: rkat run --model MODEL \"...\"", err=True)
