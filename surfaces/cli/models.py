"""``rkat models``: the model catalog of the realm, as JSON."""

from __future__ import annotations

import asyncclick as click

from .context import realm_options, service_for
from .output import print_json

__all__ = ["models_command"]


@click.command("models")
@realm_options
@click.pass_context
async def models_command(ctx: click.Context) -> None:
    """Print the models this realm can use, per provider, as JSON.

    The built-in catalog plus the realm's self-hosted models; each provider
    names its default model.

    \b
    Examples:
      rkat models
      rkat models | jq -r '.providers[].models[].id'
    """
    async with service_for(ctx, read_only=True) as service:
        print_json(await service.models_catalog())
