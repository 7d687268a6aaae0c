"""The realm options every surface accepts, parsed once.

``--realm/-r``, ``--isolated``, ``--instance``, ``--realm-backend``,
``--database-url``, ``--state-root`` and ``--context-root`` mean the same on ``rkat``, ``rkat-rpc``,
``rkat-rest`` and ``rkat-mcp``. Only the defaults differ: the CLI uses the
workspace realm of the current directory and keeps new realms in the project
(``<project>/.rkat/realms``), while the servers start a fresh generated realm per
start unless ``--realm`` names one, and keep new realms in the user data
directory (upstream behaviour).

A named realm is looked for in both places (:func:`meerkat.realm.resolve_state_root`), so
``rkat -r team ...`` finds the realm ``rkat-rest --realm team`` made, and a server
given ``--context-root`` finds the CLI's: surfaces that share a realm id share it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncContextManager

from meerkat.dburl import DATABASE_URL_ENV, parse_database_url
from meerkat.errors import InvalidParams
from meerkat.realm import BACKENDS, resolve_state_root, validate_realm_id, workspace_context, workspace_realm_id

if TYPE_CHECKING:  # keeps `import surfaces.realm_options` free of the actor runtime
    from actors import HostOptions, SessionService

__all__ = ["RealmOptions", "add_realm_arguments", "realm_options_from_args", "DATABASE_URL_HELP"]

#: ``--database-url``'s help, the same on every surface.
DATABASE_URL_HELP = (f"PostgreSQL URL of a postgres realm's database (default ${DATABASE_URL_ENV}), e.g. "
                     "postgresql://rkat@db.internal:5432/rkat?sslmode=require; keep the password in PGPASSWORD "
                     "or ~/.pgpass rather than here (command lines are visible to other users)")


@dataclass(frozen=True, slots=True)
class RealmOptions:
    """Which realm a surface serves, and where it lives."""

    realm_id: str | None = None
    isolated: bool = False
    instance_id: str | None = None
    backend: str | None = None
    state_root: str | None = None
    #: ``--database-url`` as given (``$RKAT_DATABASE_URL`` is read when the realm opens); may hold a password.
    database_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.realm_id is not None:
            validate_realm_id(self.realm_id)
            if self.isolated:
                raise InvalidParams("--realm and --isolated cannot be used together")
        if self.backend is not None and self.backend not in BACKENDS:
            raise InvalidParams(f"unknown realm backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if self.database_url is not None:
            parse_database_url(self.database_url)  # malformed: refused here, with the URL redacted

    def with_workspace_default(self, cwd: str | None = None) -> "RealmOptions":
        """These options, with the current directory's workspace realm when none is named (the CLI default)."""
        if self.realm_id is not None or self.isolated:
            return self
        realm_id = workspace_realm_id(workspace_context(cwd or os.getcwd()))
        return dataclasses.replace(self, realm_id=realm_id, isolated=False)

    def open_service(self, options: "HostOptions | None" = None) -> AsyncContextManager["SessionService"]:
        """Serve this realm until the block exits (see :func:`actors.open_service`)."""
        from actors import open_service

        return open_service(self.realm_id, state_root=self.state_root, backend=self.backend,
                            isolated=self.isolated, instance_id=self.instance_id, database_url=self.database_url,
                            options=options)


def add_realm_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the shared realm options to an argparse parser (used by the servers)."""
    group = parser.add_argument_group("realm")
    group.add_argument("--realm", "-r", dest="realm_id", metavar="ID",
                       help="serve this realm (created on first use); default: a fresh realm per start")
    group.add_argument("--isolated", action="store_true",
                       help="serve a fresh generated realm (cannot be combined with --realm)")
    group.add_argument("--instance", dest="instance_id", metavar="ID",
                       help="instance id recorded on sessions this process creates")
    group.add_argument("--realm-backend", dest="backend", choices=BACKENDS,
                       help="storage backend for a new realm (default sqlite); must match an existing realm")
    group.add_argument("--database-url", metavar="URL", help=DATABASE_URL_HELP)
    group.add_argument("--state-root", metavar="DIR",
                       help="directory holding realms (default $RKAT_STATE_ROOT, else where --realm already "
                            "exists, else the user data directory)")
    group.add_argument("--context-root", metavar="DIR",
                       help="project directory: a --realm that exists in its <project>/.rkat/realms (where the "
                            "rkat CLI keeps realms) is served from there")


def realm_options_from_args(args: argparse.Namespace | Any) -> RealmOptions:
    """Build :class:`RealmOptions` from parsed server arguments (InvalidParams on a bad combination).

    The state root is resolved here (see :func:`meerkat.realm.resolve_state_root`): servers
    look in the project of ``--context-root`` only when it is given.
    """
    context_root = getattr(args, "context_root", None)
    if context_root is not None and not os.path.isdir(context_root):  # a typo would silently hide the realm
        raise InvalidParams(f"--context-root {context_root!r} is not a directory")
    options = RealmOptions(realm_id=args.realm_id, isolated=bool(args.isolated), instance_id=args.instance_id,
                           backend=args.backend, state_root=args.state_root,
                           database_url=getattr(args, "database_url", None))
    state_root = resolve_state_root(options.realm_id, args.state_root, context_root=context_root,
                                    project_default=False)
    return dataclasses.replace(options, state_root=None if state_root is None else str(state_root))
