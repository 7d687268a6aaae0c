"""``rkat config get|set|patch``: the realm's config document and its generation.

Every write bumps the generation. ``--expected-generation N`` makes a write a
compare-and-swap: if another writer got there first, nothing is written and the
command fails with CONFIG_GENERATION_CONFLICT (exit 15) naming both numbers.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import asyncclick as click

from meerkat.errors import InvalidParams

from .context import realm_options, service_for
from .output import print_json

__all__ = ["config_group"]

_EXPECTED = click.option("--expected-generation", type=click.IntRange(min=0), metavar="N",
                         help="Write only if the config is still at generation N.")
_FILE = click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))


@click.group("config")
def config_group() -> None:
    """Read and write the realm's config (with a generation for safe concurrent edits).

    \b
    Examples:
      rkat config get
      rkat config patch --json '{"agent": {"max_tokens_per_turn": 4096}}'
      rkat config set --json '{"agent": {"model": "claude-sonnet-4-6"}}' --expected-generation 3
    """


@config_group.command("get")
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("toml", "json")), default="toml",
              show_default=True, help="toml: as the config file; json: the same as JSON.")
@click.option("--with-generation", is_flag=True,
              help="Also show the generation (toml: a first comment line; json: the envelope with realm info).")
@realm_options
@click.pass_context
async def get_command(ctx: click.Context, output_format: str, with_generation: bool) -> None:
    """Print the whole config, with every default filled in.

    \b
    Examples:
      rkat config get
      rkat config get --format json --with-generation
    """
    async with service_for(ctx, read_only=True) as service:
        view = await service.get_config()
    if output_format == "json":
        print_json(view.to_wire() if with_generation else view.config)
        return
    import tomli_w

    if with_generation:
        click.echo(f"# generation = {view.generation}")
    click.echo(tomli_w.dumps(_without_nulls(view.config)), nl=False)


def _without_nulls(value: Any) -> Any:
    """TOML has no null: unset optional keys are left out, as in the config file."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    return value


@config_group.command("set")
@_FILE
@click.option("--json", "json_text", metavar="JSON", help="The whole config as JSON.")
@click.option("--toml", "toml_text", metavar="TOML", help="The whole config as TOML.")
@_EXPECTED
@realm_options
@click.pass_context
async def set_command(ctx: click.Context, file: Path | None, json_text: str | None, toml_text: str | None,
                      expected_generation: int | None) -> None:
    """Replace the whole config: keys left out go back to their defaults.

    FILE is read as JSON if it ends in .json, else as TOML. Prints the new generation.

    \b
    Examples:
      rkat config set --json '{"agent": {"model": "claude-sonnet-4-6"}}'
      rkat config set --toml '[agent]
      model = "gpt-5.5"' --expected-generation 2
      rkat config set realm-config.toml
    """
    document = _document(file, json_text, toml_text, file_is_json=file is not None and file.suffix == ".json")
    async with service_for(ctx) as service:
        view = await service.set_config(document, expected_generation=expected_generation)
    click.echo(f"generation={view.generation}")


@config_group.command("patch")
@_FILE
@click.option("--json", "json_text", metavar="JSON", help="An RFC 7396 merge patch as JSON.")
@_EXPECTED
@realm_options
@click.pass_context
async def patch_command(ctx: click.Context, file: Path | None, json_text: str | None,
                        expected_generation: int | None) -> None:
    """Change part of the config with a JSON merge patch (null resets a key to its default).

    FILE holds the patch as JSON. Prints the new generation.

    \b
    Examples:
      rkat config patch --json '{"agent": {"max_tokens_per_turn": 4096}}'
      rkat config patch --json '{"agent": {"system_prompt": null}}' --expected-generation 5
      rkat config patch changes.json
    """
    document = _document(file, json_text, None, file_is_json=True)
    async with service_for(ctx) as service:
        view = await service.patch_config(document, expected_generation=expected_generation)
    click.echo(f"generation={view.generation}")


def _document(file: Path | None, json_text: str | None, toml_text: str | None, *,
              file_is_json: bool) -> dict[str, Any]:
    """The one document given by FILE, --json or --toml, as an object."""
    given = [source for source in (file, json_text, toml_text) if source is not None]
    if len(given) != 1:
        raise InvalidParams("give the document exactly once: as FILE, --json or --toml"
                            if given else "missing document: pass FILE, --json '{...}' or --toml '...'")
    if file is not None:
        text = _read(file)
        return _parse_json(text, str(file)) if file_is_json else _parse_toml(text, str(file))
    if json_text is not None:
        return _parse_json(json_text, "--json")
    assert toml_text is not None
    return _parse_toml(toml_text, "--toml")


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParams(f"cannot read {file}: {exc}") from None


def _parse_json(text: str, source: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidParams(f"Failed to parse JSON config from {source}: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidParams(f"{source} must hold a JSON object, got {type(value).__name__}")
    return value


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParams(f"Failed to parse TOML config from {source}: {exc}") from None
