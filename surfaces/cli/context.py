"""Which realm one ``rkat`` invocation serves, and where it lives.

The realm options (``--realm/-r``, ``--isolated``, ``--instance``,
``--realm-backend``, ``--database-url``, ``--state-root``) are accepted before the command and after
it (``rkat session list -r team``); a value given after the command wins.

Defaults (as upstream's CLI): the realm is the workspace realm of the current
directory (``ws-<hash of its path>``), stored project-locally under
``<project>/.rkat/realms``, where ``<project>`` is the nearest ancestor of the
current directory holding a ``.rkat`` entry, else the current directory itself.
``$RKAT_STATE_ROOT`` overrides that location, and ``--state-root`` overrides both.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncContextManager, AsyncIterator, Callable

import asyncclick as click

from meerkat.dburl import database_url
from meerkat.errors import InvalidParams
from meerkat.fsutil import make_private_dir
from meerkat.realm import BACKENDS, RealmPaths, resolve_state_root, stored_backends

from surfaces.realm_options import DATABASE_URL_HELP, RealmOptions

from .terminal_text import set_raw

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["realm_options", "state_root_option", "database_url_option", "service_for", "explicit_state_root",
           "chosen_database_url"]

_META_KEY = "rkat.realm"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record a realm option given on the command line (defaults never override a root value)."""
    source = ctx.get_parameter_source(param.name or "")
    if source is not None and source.name != "DEFAULT" and param.name:
        ctx.find_root().meta.setdefault(_META_KEY, {})[param.name] = value
    return value


def _raw_text(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        set_raw(True)


def state_root_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add only ``--state-root`` (commands about many realms, such as ``rkat realm list``)."""
    return click.option("--state-root", type=click.Path(file_okay=False), metavar="DIR", expose_value=False,
                        callback=_remember, help="Directory holding realms [default: <project>/.rkat/realms, "
                                                 "or $RKAT_STATE_ROOT].")(command)


def database_url_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add only ``--database-url`` (``rkat realm list`` lists that database's realms too)."""
    return click.option("--database-url", "database_url", metavar="URL", expose_value=False, callback=_remember,
                        help=DATABASE_URL_HELP[0].upper() + DATABASE_URL_HELP[1:] + ".")(command)


def realm_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the realm options to a command (the root group and every leaf command)."""
    options = [
        click.option("--realm-backend", "backend", type=click.Choice(BACKENDS), expose_value=False,
                     callback=_remember, help="Storage for a new realm [default: sqlite]; must match an existing one."),
        click.option("--instance", "instance_id", metavar="ID", expose_value=False, callback=_remember,
                     help="Instance id recorded on the sessions this invocation creates."),
        click.option("--isolated", is_flag=True, expose_value=False, callback=_remember,
                     help="Use a fresh throw-away realm (cannot be combined with --realm)."),
        click.option("--realm", "-r", "realm_id", metavar="ID", expose_value=False, callback=_remember,
                     help="Realm to use [default: the workspace realm of the current directory]."),
        click.option("--raw", is_flag=True, expose_value=False, callback=_raw_text,
                     help="Print model and tool text as received, terminal control sequences included "
                          "[default: they are removed]."),
    ]
    command = state_root_option(command)  # first: listed last in --help, as always
    command = database_url_option(command)
    for option in options:
        command = option(command)
    return command


def _chosen_options(ctx: click.Context) -> RealmOptions:
    chosen = ctx.find_root().meta.get(_META_KEY, {})
    options = RealmOptions(realm_id=chosen.get("realm_id"), isolated=bool(chosen.get("isolated")),
                           instance_id=chosen.get("instance_id"), backend=chosen.get("backend"),
                           state_root=chosen.get("state_root"),
                           database_url=chosen.get("database_url")).with_workspace_default()
    # The realm where it already exists (the project's .rkat/realms or the user data
    # directory, where the servers keep theirs); a new one goes in the project.
    state_root = resolve_state_root(options.realm_id, options.state_root, context_root=os.getcwd(),
                                    project_default=True)
    return dataclasses.replace(options, state_root=str(state_root))


def service_for(ctx: click.Context, *, read_only: bool = False) -> AsyncContextManager["SessionService"]:
    """Open the realm this invocation names (raises InvalidParams for a bad realm choice).

    ``read_only`` commands (list, show, config get, models...) create nothing: a realm
    that does not exist yet is served empty from memory, so ``rkat session list`` in a
    fresh checkout leaves no ``.rkat/`` behind. A command that writes and creates the
    project's ``.rkat/`` also puts a ``.gitignore`` in it, so git never lists it.
    """
    options = _chosen_options(ctx)
    paths = (RealmPaths.for_realm(options.state_root, options.realm_id)
             if options.realm_id is not None and options.state_root is not None else None)
    # A realm without its manifest but with stored sessions is no absent realm: its manifest
    # was deleted, and opening it says so (meerkat.realm) rather than showing it empty.
    if paths is not None and options.backend != "memory" and not paths.manifest_path.exists() \
            and not stored_backends(paths):
        if read_only and not _in_database(options):
            return _read_only(dataclasses.replace(options, backend="memory", database_url=None), options)
        if not read_only and explicit_state_root(ctx) is None and options.state_root is not None:
            start_project_dir(Path(options.state_root))
    return options.open_service()


def _in_database(options: RealmOptions) -> bool:
    """Whether a realm this host has no manifest of is a postgres realm (so it is not absent here).

    ``--realm-backend postgres`` without any URL counts as yes, so that opening it
    says which flag to set instead of showing an empty realm.
    """
    url = database_url(options.database_url)
    if options.backend not in (None, "postgres") or options.realm_id is None:
        return False
    if url is None:
        return options.backend == "postgres"
    from meerkat.realm_database import database_realm_exists

    return database_realm_exists(url, options.realm_id)


@asynccontextmanager
async def _read_only(empty: RealmOptions, real: RealmOptions) -> AsyncIterator["SessionService"]:
    """Serve an absent realm empty from memory; if another command creates it meanwhile, serve that."""
    async with AsyncExitStack() as stack:
        try:
            service = await stack.enter_async_context(empty.open_service())
        except InvalidParams as exc:
            if "backend mismatch" not in exc.message:
                raise
            service = await stack.enter_async_context(real.open_service())  # created since we looked
        yield service


#: What ``.rkat/.gitignore`` says: everything in it is local state.
GITIGNORE = "# rkat's local state (sessions, config): never committed\n*\n"


def start_project_dir(state_root: Path) -> None:
    """Create ``<project>/.rkat/`` (holding ``state_root``) with its ``.gitignore``, if it is new."""
    if state_root.name != "realms" or state_root.parent.name != ".rkat" or state_root.parent.exists():
        return
    make_private_dir(state_root.parent)  # 0700 whatever the umask: only its owner's .rkat is trusted
    (state_root.parent / ".gitignore").write_text(GITIGNORE)


def explicit_state_root(ctx: click.Context) -> str | None:
    """``--state-root`` if given, else ``$RKAT_STATE_ROOT``, else None (the surfaces' defaults apply)."""
    chosen = ctx.find_root().meta.get(_META_KEY, {})
    return chosen.get("state_root") or os.environ.get("RKAT_STATE_ROOT") or None


def chosen_database_url(ctx: click.Context) -> str | None:
    """``--database-url`` if given, else ``$RKAT_DATABASE_URL``, else None."""
    return database_url(ctx.find_root().meta.get(_META_KEY, {}).get("database_url"))


def chosen_options(ctx: click.Context) -> RealmOptions:
    """The realm options this invocation resolves to (state root included), without opening anything."""
    return _chosen_options(ctx)
