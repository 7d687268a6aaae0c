"""``rkat doctor``: what this invocation would use, and whether it works.

Which realm and state root, whether the realm exists and its store reads back,
for a postgres realm the database (reachable, latency, server and schema version,
its URL without the password), the config file (and keys in it this version does
not know), which provider keys
are set (never their values), which base URLs, whether each provider with a key
answers, and versions. It only reads: a missing realm is reported, not created.
"""

from __future__ import annotations

import logging
import os
import platform
import time
import tomllib
from importlib import metadata
from typing import Any

import asyncclick as click
import trio

from meerkat.realm import RealmPaths, read_manifest

from .context import chosen_database_url, chosen_options, realm_options
from .output import print_json

__all__ = ["doctor_command"]

#: How long a provider gets to answer the reachability probe.
PROBE_TIMEOUT_S = 5.0
_HOSTED = ("anthropic", "openai", "gemini")
_VERSIONS = ("rkat", "trio", "httpx2", "anthropic", "openai", "mcp", "msgspec", "hypercorn", "quart")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _read_config(paths: RealmPaths) -> tuple[dict[str, Any], list[str], str | None]:
    """The stored config document (raw), its unknown keys, and a problem reading it."""
    from meerkat.config.keys import unknown_keys
    from meerkat.config.schema import Config

    try:
        raw = tomllib.loads(paths.config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, [], None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, [], f"cannot read {paths.config_path}: {exc}"
    return raw, [path for path, _ in unknown_keys(raw, Config)], None


class _Collect(logging.Handler):
    """Keeps what opening the realm warns about (an emptied database, a deleted manifest...)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _store_check(ctx: click.Context) -> tuple[str, dict[str, Any]]:
    """The realm's store, checked as ``GET /health`` checks it plus SQLite's quick_check (deep).

    Opening a damaged realm reports what it found (and may then serve it empty), so
    what the open warned about is part of the answer too. Also returns the realm's
    stored config document as the realm serves it (empty when it did not open).
    """
    from actors.store_health import check_store

    from .context import service_for

    collected, realm_log = _Collect(), logging.getLogger("rkat.realm")
    realm_log.addHandler(collected)
    config: dict[str, Any] = {}
    try:
        async with service_for(ctx, read_only=True) as service:
            problems = await check_store(service, deep=True)
            if not problems:
                config = (await service.get_config()).config
            realm = service.realm
            where = {"sqlite": realm.paths.sessions_sqlite_path, "jsonl": realm.paths.sessions_jsonl_dir,
                     "postgres": realm.database.display() if realm.database else None}.get(realm.backend, "(memory)")
    except Exception as exc:  # noqa: BLE001 - a doctor reports every failure: a realm that will not open
        problems = [str(getattr(exc, "message", None) or exc)]
    finally:
        realm_log.removeHandler(collected)
    problems = [*collected.messages, *problems]
    return ("FAILED: " + "; ".join(problems) if problems else f"ok ({where})"), config


async def _database(url: str, realm_id: str, realm: dict[str, Any]) -> dict[str, Any]:
    """The database at ``url``: one fresh round trip (never the password); notes whether it holds the realm."""
    from meerkat.dburl import redact_url
    from meerkat.errors import MeerkatError
    from meerkat.store.postgres_realms import find_realm, probe_database

    probe = (await trio.to_thread.run_sync(probe_database, url)).to_dict()
    if probe["reachable"]:
        try:
            row, _database_id = await trio.to_thread.run_sync(find_realm, url, realm_id)
        except MeerkatError as exc:
            probe["problem"] = exc.message
        else:
            if row is not None:
                realm["in_database"] = row.origin
    probe.setdefault("url", redact_url(url))
    return probe


async def _probe(url: str) -> str:
    """Whether anything answers HTTP at ``url`` (any status counts: the server is there)."""
    import httpx2

    started = time.monotonic()
    try:
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(PROBE_TIMEOUT_S, connect=PROBE_TIMEOUT_S)) as client:
            reply = await client.get(url)
    except httpx2.TimeoutException:
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    except httpx2.HTTPError as exc:
        return f"unreachable: {exc or type(exc).__name__}"
    return f"answers (HTTP {reply.status_code} in {time.monotonic() - started:.2f} s)"


async def _report(ctx: click.Context, options: Any, probe: bool) -> dict[str, Any]:
    from meerkat.providers.credentials import KEY_VARIABLES, base_url_for, find_api_key

    report: dict[str, Any] = {"versions": {name: _version(name) for name in _VERSIONS}}
    report["versions"]["python"] = platform.python_version()
    realm: dict[str, Any] = {"realm_id": options.realm_id or "(a fresh throw-away realm)",
                             "state_root": options.state_root, "isolated": options.isolated}
    config: dict[str, Any] = {}
    if options.realm_id and options.state_root:
        paths = RealmPaths.for_realm(options.state_root, options.realm_id)
        realm["path"] = str(paths.root)
        try:
            manifest = await trio.to_thread.run_sync(read_manifest, paths.manifest_path)
        except Exception as exc:  # noqa: BLE001 - a doctor reports every failure
            manifest, realm["problem"] = None, str(exc)
        url = chosen_database_url(ctx)
        if url is not None:
            report["database"] = await _database(url, options.realm_id, realm)
        origin_in_database = realm.pop("in_database", None)
        if manifest is None and origin_in_database is not None:  # a database realm this host never cached
            realm["backend"], realm["origin"] = "postgres", origin_in_database
        elif manifest is not None:
            realm["backend"], realm["origin"] = manifest.backend, manifest.origin
        realm["exists"] = "backend" in realm
        if realm["exists"]:
            realm["store"], served_config = await _store_check(ctx)
        if realm.get("backend") == "postgres":
            config = served_config  # it lives in the database, not in a file here
        elif manifest is not None:
            config, unknown, problem = await trio.to_thread.run_sync(_read_config, paths)
            realm["config_file"] = str(paths.config_path)
            if unknown:
                realm["unknown_config_keys"] = unknown
            if problem:
                realm["config_problem"] = problem
    report["realm"] = realm
    endpoints = config.get("providers") if isinstance(config.get("providers"), dict) else {}
    providers: dict[str, Any] = {}
    for name in _HOSTED:
        key = find_api_key(name)
        names = [n for n in KEY_VARIABLES[name] if os.environ.get(n, "").strip()]
        entry: dict[str, Any] = {"key": f"set ({names[0]})" if key else f"not set ({' or '.join(KEY_VARIABLES[name])})",
                                 "base_url": base_url_for(name, endpoints)}
        providers[name] = entry
    servers = ((config.get("self_hosted") or {}).get("servers") or {}) if isinstance(config.get("self_hosted"), dict) \
        else {}
    for server, spec in servers.items():
        if isinstance(spec, dict) and isinstance(spec.get("base_url"), str):
            providers[f"self_hosted.{server}"] = {"key": "optional", "base_url": spec["base_url"]}
    if probe:
        async with trio.open_nursery() as nursery:
            for name, entry in providers.items():
                if name.startswith("self_hosted.") or find_api_key(name):
                    async def check(entry: dict[str, Any] = entry) -> None:
                        entry["reachable"] = await _probe(entry["base_url"])
                    nursery.start_soon(check)
    report["providers"] = providers
    report["default_model"] = ((config.get("agent") or {}).get("model") if isinstance(config.get("agent"), dict)
                               else None) or "(resolved per run: a keyed provider's default, else mock)"
    return report


@click.command("doctor")
@click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")),
              default="text", show_default=True, help="text: for people; json: for scripts and bug reports.")
@click.option("--no-probe", is_flag=True, help="Do not contact the providers.")
@realm_options
@click.pass_context
async def doctor_command(ctx: click.Context, output_format: str, no_probe: bool) -> None:
    """Show what rkat would use here, and check that it works.

    The realm and state root, whether the realm exists and its store is sound,
    the config file (and keys this version does not know), which provider keys
    are set (never their values), the base URLs, whether each provider with a key
    answers, and versions. It changes nothing.

    \b
    Examples:
      rkat doctor
      rkat doctor --no-probe --format json
    """
    report = await _report(ctx, chosen_options(ctx), probe=not no_probe)
    if output_format == "json":
        print_json(report)
        return
    realm = report["realm"]
    lines = ["Realm", f"  id           {realm['realm_id']}", f"  state root   {realm['state_root']}"]
    if "exists" in realm:
        lines.append(f"  exists       {'yes' if realm['exists'] else 'no (created by the first command that writes)'}")
    for key, label in (("backend", "backend"), ("origin", "origin"), ("store", "store"),
                       ("config_file", "config file"), ("config_problem", "PROBLEM"), ("problem", "PROBLEM")):
        if key in realm:
            lines.append(f"  {label:<12} {realm[key]}")
    if realm.get("unknown_config_keys"):
        lines.append(f"  UNKNOWN KEYS {', '.join(realm['unknown_config_keys'])} (ignored; remove or fix them)")
    if "database" in report:
        lines += ["", "Database"] + [f"  {key.replace('_', ' '):<14} {value}"
                                     for key, value in report["database"].items()]
    lines += ["", f"Default model  {report['default_model']}", "", "Providers"]
    for name, entry in report["providers"].items():
        lines.append(f"  {name:<22} key {entry['key']}")
        lines.append(f"  {'':<22} base URL {entry['base_url']}")
        if "reachable" in entry:
            lines.append(f"  {'':<22} {entry['reachable']}")
    lines += ["", "Versions", "  " + ", ".join(f"{k} {v}" for k, v in report["versions"].items())]
    click.echo("\n".join(lines))
