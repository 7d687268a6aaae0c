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
@click.argument("key", required=False)
@realm_options
@click.pass_context
async def get_command(ctx: click.Context, output_format: str, with_generation: bool, key: str | None) -> None:
    """Print the whole config, with every default filled in, or the value of one KEY.

    KEY is a dotted path (agent.model, retry.first_byte_timeout_ms, agent): a
    value prints as it is (a string without quotes), a table as TOML or JSON.

    \b
    Examples:
      rkat config get
      rkat config get --format json --with-generation
    """
    async with service_for(ctx, read_only=True) as service:
        view = await service.get_config()
    if key is not None:
        _print_value(key, lookup(view.config, key), output_format)
        return
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
@click.argument("args", nargs=-1, metavar="[FILE | - | KEY VALUE]")
@click.option("--json", "json_text", metavar="JSON", help="The whole config as JSON.")
@click.option("--toml", "toml_text", metavar="TOML", help="The whole config as TOML.")
@_EXPECTED
@realm_options
@click.pass_context
async def set_command(ctx: click.Context, args: tuple[str, ...], json_text: str | None, toml_text: str | None,
                      expected_generation: int | None) -> None:
    """Set one KEY to VALUE, or replace the whole config (keys left out go back to their defaults).

    With KEY VALUE only that key changes (VALUE is JSON when it parses as JSON:
    4096, true, null, "text", {...}; else a plain string). FILE is read as JSON if
    it ends in .json, else as TOML; - reads the document from stdin. Prints the
    new generation.

    \b
    Examples:
      rkat config set agent.model claude-sonnet-4-6
      rkat config set retry.max_retries 5
      rkat config set --json '{"agent": {"model": "claude-sonnet-4-6"}}'
      rkat config set realm-config.toml --expected-generation 2
      rkat config get | sed 's/16384/8192/' | rkat config set -
    """
    if len(args) == 2:
        patch = _patch_for(args[0], _parse_value(args[1]))
        async with service_for(ctx) as service:
            view = await service.patch_config(patch, expected_generation=expected_generation)
        click.echo(f"generation={view.generation}")
        return
    if len(args) > 2:
        raise InvalidParams("config set takes FILE, - (stdin), or KEY VALUE; a VALUE with spaces needs quotes")
    file = Path(args[0]) if args else None
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

    FILE holds the patch as JSON (- reads it from stdin). Prints the new generation.

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
    if file is not None and str(file) == "-":
        text = click.get_text_stream("stdin").read()
        as_json = file_is_json or text.lstrip().startswith("{")
        return _parse_json(text, "stdin") if as_json else _parse_toml(text, "stdin")
    if file is not None:
        text = _read(file)
        return _parse_json(text, str(file)) if file_is_json else _parse_toml(text, str(file))
    if json_text is not None:
        return _parse_json(json_text, "--json")
    assert toml_text is not None
    return _parse_toml(toml_text, "--toml")


def lookup(config: dict[str, Any], key: str) -> Any:
    """The value at dotted ``key``; INVALID_PARAMS naming the key (with a did-you-mean) if there is none."""
    value: Any = config
    walked: list[str] = []
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            import difflib

            options = [".".join([*walked, name]) for name in value] if isinstance(value, dict) else []
            close = difflib.get_close_matches(".".join([*walked, part]), options, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidParams(f"unknown config key {key!r}{hint}", details={"key": key})
        value = value[part]
        walked.append(part)
    return value


def _print_value(key: str, value: Any, output_format: str) -> None:
    if isinstance(value, dict) and output_format == "toml":
        import tomli_w

        click.echo(tomli_w.dumps(_without_nulls(value)), nl=False)
    elif isinstance(value, str) and output_format == "toml":
        click.echo(value)
    else:
        click.echo(json.dumps(value, ensure_ascii=False, indent=2 if isinstance(value, (dict, list)) else None))


def _parse_value(text: str) -> Any:
    """A VALUE from the command line: JSON when it parses as JSON, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _patch_for(key: str, value: Any) -> dict[str, Any]:
    """The merge patch setting dotted ``key`` to ``value``."""
    parts = key.split(".")
    if not all(parts):
        raise InvalidParams(f"invalid config key {key!r}: expected a dotted path such as agent.model")
    patch: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        patch = {part: patch}
    return patch


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
