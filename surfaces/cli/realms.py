"""``rkat realm list|prune``: the realms on this machine (and in a database), and removing throw-away leftovers.

Servers and SDK clients started without ``--realm`` (and ``rkat --isolated``) use a
throw-away realm that is removed when the process exits; a crash or ``kill -9``
leaves it behind. ``prune`` removes such leftovers that no process is serving.
Realms in a PostgreSQL database are listed from the database when a URL is given
(``--database-url`` or ``$RKAT_DATABASE_URL``) and are never pruned.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import asyncclick as click

from meerkat.config.durations import parse_duration
from meerkat.dburl import redact_url
from meerkat.errors import InvalidParams
from meerkat.realm import default_state_root, project_state_root
from meerkat.realm_admin import RealmInfo, list_database_realms, list_realms, prune_realms

from .context import chosen_database_url, database_url_option, explicit_state_root, state_root_option
from .output import print_json

__all__ = ["realm_group"]

_FORMAT = click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")),
                       default="text", show_default=True, help="text: for people; json: for scripts.")


def _roots(ctx: click.Context) -> list[Path]:
    """The state roots to look in: the explicit one, else the project's and the user's."""
    explicit = explicit_state_root(ctx)
    if explicit:
        return [Path(explicit)]
    project = project_state_root(os.getcwd())  # None: the project's .rkat is not trusted
    roots = [root for root in (project, default_state_root()) if root is not None]
    if len(roots) == 2 and roots[0].exists() and roots[1].exists() and roots[0].samefile(roots[1]):
        roots.pop()
    return roots


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return str(size)


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M")


@click.group("realm")
def realm_group() -> None:
    """List the realms on this machine and prune throw-away leftovers.

    Looks in --state-root (or $RKAT_STATE_ROOT) when given, else in the
    project's .rkat/realms and in the user data directory; with --database-url
    (or $RKAT_DATABASE_URL) also in that PostgreSQL database.

    \b
    Examples:
      rkat realm list
      rkat realm prune --older-than 7d --dry-run
    """


def _found(ctx: click.Context) -> list[RealmInfo]:
    """The realms under the state roots, and those of the database when a URL is given.

    A database realm replaces the state root's cache of it (same id, same database).
    """
    found: list[RealmInfo] = []
    for root in _roots(ctx):
        found.extend(list_realms(root))
    url = chosen_database_url(ctx)
    if url is None:
        return found
    in_database = list_database_realms(url)
    listed = {(info.realm_id, info.database) for info in in_database}
    return [info for info in found if (info.realm_id, info.database) not in listed] + in_database


@realm_group.command("list")
@_FORMAT
@database_url_option
@state_root_option
@click.pass_context
async def list_command(ctx: click.Context, output_format: str) -> None:
    """List realms: id, origin, backend, last activity, size, whether a process serves it, and where.

    A realm listed from its database shows the database (its URL without the
    password) and '-' for size and in use: other hosts may serve it.
    """
    found = _found(ctx)
    if output_format == "json":
        print_json([info.to_dict() for info in found])
        return
    if not found:
        url = chosen_database_url(ctx)
        places = [str(r) for r in _roots(ctx)] + ([redact_url(url)] if url else [])
        click.echo("No realms in " + " or ".join(places))
        return
    width = max(len(info.realm_id) for info in found)
    click.echo(f"{'REALM':<{width}}  {'ORIGIN':<9}  {'BACKEND':<8}  {'LAST ACTIVE (UTC)':<17}  {'SIZE':>9}  "
               f"{'IN USE':<6}  WHERE")
    for info in found:
        in_use = "-" if info.in_use is None else "yes" if info.in_use else "no"
        where = info.path if info.path is not None else info.database
        click.echo(f"{info.realm_id:<{width}}  {info.origin:<9}  {info.backend:<8}  {_when(info.last_active):<17}  "
                   f"{_size(info.size_bytes):>9}  {in_use:<6}  {where}")


@realm_group.command("prune")
@click.option("--older-than", default="7d", show_default=True, metavar="DURATION",
              help="Only realms idle at least this long (90s, 12h, 7d...); 0 for any age.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@state_root_option
@click.pass_context
async def prune_command(ctx: click.Context, older_than: str, dry_run: bool) -> None:
    """Remove throw-away realms (origin "generated") that no process is serving.

    Workspace and named realms are never pruned: remove those by hand. Neither
    are realms in a PostgreSQL database (backend postgres): their directory here
    is only a cache, and other hosts may be serving them.
    """
    try:
        age = 0.0 if older_than.strip() == "0" else parse_duration(older_than, "--older-than")
    except InvalidParams:
        raise InvalidParams(f"--older-than must be a duration such as 90s, 12h or 7d (got {older_than!r})") from None
    removed: list[RealmInfo] = []
    now = time.time()
    for root in _roots(ctx):
        removed.extend(prune_realms(root, older_than_s=age, dry_run=dry_run, now=now))
    verb = "would remove" if dry_run else "removed"
    for info in removed:
        click.echo(f"{verb} {info.realm_id} ({_size(info.size_bytes)}, {info.path})")
    click.echo(f"{len(removed)} realm(s) {verb}.", err=True)
