"""The realm options every surface accepts, parsed once.

``--realm/-r``, ``--isolated``, ``--instance``, ``--realm-backend`` and
``--state-root`` mean the same on ``rkat``, ``rkat-rpc``, ``rkat-rest`` and
``rkat-mcp``. Only the default differs: the CLI uses the workspace realm of the
current directory, while the servers start a fresh generated realm per start
unless ``--realm`` names one (upstream behaviour).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncContextManager

from meerkat.errors import InvalidParams
from meerkat.realm import BACKENDS, validate_realm_id, workspace_realm_id

if TYPE_CHECKING:  # keeps `import surfaces.realm_options` free of the actor runtime
    from actors import HostOptions, SessionService

__all__ = ["RealmOptions", "add_realm_arguments", "realm_options_from_args", "project_state_root"]


@dataclass(frozen=True, slots=True)
class RealmOptions:
    """Which realm a surface serves, and where it lives."""

    realm_id: str | None = None
    isolated: bool = False
    instance_id: str | None = None
    backend: str | None = None
    state_root: str | None = None

    def __post_init__(self) -> None:
        if self.realm_id is not None:
            validate_realm_id(self.realm_id)
            if self.isolated:
                raise InvalidParams("--realm and --isolated cannot be used together")
        if self.backend is not None and self.backend not in BACKENDS:
            raise InvalidParams(f"unknown realm backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")

    def with_workspace_default(self, cwd: str | None = None) -> "RealmOptions":
        """These options, with the current directory's workspace realm when none is named (the CLI default)."""
        if self.realm_id is not None or self.isolated:
            return self
        realm_id = workspace_realm_id(cwd or os.getcwd())
        return RealmOptions(realm_id, False, self.instance_id, self.backend, self.state_root)

    def open_service(self, options: "HostOptions | None" = None) -> AsyncContextManager["SessionService"]:
        """Serve this realm until the block exits (see :func:`actors.open_service`)."""
        from actors import open_service

        return open_service(self.realm_id, state_root=self.state_root, backend=self.backend,
                            isolated=self.isolated, instance_id=self.instance_id, options=options)


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
    group.add_argument("--state-root", metavar="DIR",
                       help="directory holding realms (default $RKAT_STATE_ROOT or the user data directory)")


def realm_options_from_args(args: argparse.Namespace | Any) -> RealmOptions:
    """Build :class:`RealmOptions` from parsed arguments (raises InvalidParams on a bad combination)."""
    return RealmOptions(realm_id=args.realm_id, isolated=bool(args.isolated), instance_id=args.instance_id,
                        backend=args.backend, state_root=args.state_root)


def project_state_root(cwd: str | Path) -> Path:
    """``<project>/.rkat/realms`` for the nearest ancestor of ``cwd`` holding ``.rkat`` (else ``cwd``).

    The CLI's default state root (upstream's project-local layout); ``rkat-rpc
    --context-root`` uses it too, so an SDK program finds the CLI's realms.
    """
    start = Path(cwd)
    for directory in (start, *start.parents):
        if (directory / ".rkat").exists():
            return directory / ".rkat" / "realms"
    return start / ".rkat" / "realms"
