"""A real PostgreSQL server for tests and benches, started and stopped by the caller.

:func:`running_postgres` finds the server binaries (``initdb``, ``pg_ctl``,
``postgres``), makes a throw-away cluster in a fresh directory under the system
temp dir, starts it on a free loopback port (plus a private unix socket
directory) and stops it again, leaving no process or file behind::

    with running_postgres() as server:
        url = server.create_database()      # postgresql://rkat:...@127.0.0.1:PORT/test_...

Where the binaries come from, first match wins: ``$RKAT_POSTGRES_BIN`` (a
directory), ``pg_ctl`` on ``PATH``, ``/usr/lib/postgresql/*/bin`` (Debian's
packages, newest version first), and the ``pgserver`` package from PyPI (its
wheel ships the server; ``make test`` installs it into the venv only when none
of the others exists).

PostgreSQL refuses to run as root. When this process is root the server runs
as ``nobody``: its directory is made fresh under ``/tmp`` and given to that
user, and binaries ``nobody`` cannot reach (a venv under ``/root``) are copied
into that directory first.

The cluster is tuned for tests only: ``fsync``, ``synchronous_commit`` and
``full_page_writes`` are off (a crash of the *machine* may lose it; nothing here
needs to survive one). The product never sets these. The superuser ``rkat``
has a random password, required over TCP (``scram-sha-256``), so clients'
password handling is exercised; the unix socket trusts local connections.

If the process that started the server dies without stopping it (SIGKILL,
a crash), a small watchdog process notices its pipe closing and stops the
server and removes its directory.

Run one by hand (for a bench or to poke at it): ``python -m meerkat.testing.postgres``
prints a URL and serves until Ctrl-C; ``--check`` only tells where the binaries are.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bin_dir", "running_postgres", "BIN_DIR_ENV"]

#: An explicit directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (checked first).
BIN_DIR_ENV = "RKAT_POSTGRES_BIN"
#: The unprivileged account the server runs as when this process is root.
ROOT_FALLBACK_USER = "nobody"
SUPERUSER = "rkat"
_TOOLS = ("initdb", "pg_ctl", "postgres")
#: Settings for a disposable test cluster: fast, never durable across a machine crash.
TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
    "log_connections": "off",
}


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started; the message says why and how to get one."""


@dataclass(frozen=True)
class PostgresServer:
    """A running test server: where to reach it and how to log in."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    socket_dir: Path
    bin_dir: Path
    version: str

    def url(self, dbname: str = "postgres", *, with_password: bool = True) -> str:
        """A ``postgresql://`` URL for ``dbname`` over TCP (scram), with or without the password."""
        secret = f":{quote(self.password, safe='')}" if with_password else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def connect(self, dbname: str = "postgres", **options: Any) -> Any:
        """An autocommit psycopg connection (the caller closes it)."""
        import psycopg

        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10, **options)

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a fresh database (a random name unless given), empty or a copy of ``template``; its URL."""
        from psycopg import sql

        name = name or f"test_{secrets.token_hex(6)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:  # a template must have no other connection while it is copied
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _has_tools(directory: Path) -> bool:
    return all(os.access(directory / tool, os.X_OK) for tool in _TOOLS)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name)) or (0,)


def find_bin_dir() -> Path | None:
    """The first directory with the server binaries (see the module docstring for the order)."""
    explicit = os.environ.get(BIN_DIR_ENV)
    if explicit:
        return Path(explicit) if _has_tools(Path(explicit)) else None
    on_path = shutil.which("pg_ctl")
    candidates: list[Path] = [Path(os.path.realpath(on_path)).parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)]
    spec = importlib.util.find_spec("pgserver")  # finds the package without importing it (or its deps)
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    return next((c for c in candidates if _has_tools(c)), None)


def _others_can_run(path: Path) -> bool:
    """Whether an unprivileged user can reach ``path`` (every ancestor searchable by others)."""
    path = path.resolve()
    for part in [path, *path.parents]:
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _copy_install(bin_dir: Path, dest: Path) -> Path:
    """Copy an install others cannot reach (pgserver in a venv under /root) to ``dest``; its new bin dir.

    The layout two levels up is kept, with the ``<package>.libs`` directory beside the
    package: pgserver's binaries find their shared libraries through an RPATH of
    ``$ORIGIN/../../../pgserver.libs``.
    """
    install = bin_dir.parent  # .../site-packages/pgserver/pginstall
    package, site = install.parent, install.parent.parent
    shutil.copytree(install, dest / package.name / install.name, symlinks=True)
    libs = site / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / libs.name, symlinks=True)
    for path in [dest, *dest.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return dest / package.name / install.name / bin_dir.name


@dataclass
class _Account:
    """Who runs the server: this process, or ``nobody`` when this process is root."""

    uid: int | None = None
    gid: int | None = None

    def popen_options(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid if self.gid is not None else -1)


def _account() -> _Account:
    if os.geteuid() != 0:
        return _Account()
    try:
        entry = pwd.getpwnam(ROOT_FALLBACK_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, PostgreSQL needs an unprivileged user, and there is no {ROOT_FALLBACK_USER!r}"
        ) from None
    return _Account(uid=entry.pw_uid, gid=entry.pw_gid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Cluster:
    """The directory, processes and steps of one throw-away server."""

    def __init__(self, bin_dir: Path, account: _Account, parent: Path | None) -> None:
        self.account = account
        self.base = Path(tempfile.mkdtemp(prefix="rkat-pg-", dir=parent))
        os.chmod(self.base, 0o700)
        account.give(self.base)
        if account.uid is not None and not _others_can_run(bin_dir / "postgres"):
            bin_dir = _copy_install(bin_dir, self.base / "install")
        self.bin_dir = bin_dir
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log = self.base / "server.log"
        self.socket_dir.mkdir(mode=0o700)
        account.give(self.socket_dir)
        self.watchdog: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], cwd=self.base, env=env, text=True,
                              capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              **self.account.popen_options())

    def init(self, password: str, settings: dict[str, str]) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        self.account.give(pwfile)
        try:
            done = self.run("initdb", "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                            "--no-sync")
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed in {self.data}:\n{done.stdout}{done.stderr}")
        lines = [f"{key} = '{value}'" for key, value in settings.items()]
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# rkat test cluster\n" + "\n".join(lines) + "\n")

    def start(self) -> int:
        """Start on a free port (a few tries: another process may take the port first); returns it."""
        for _ in range(5):
            port = _free_port()
            options = (f"-c port={port} -c listen_addresses=127.0.0.1 "
                       f"-c unix_socket_directories={self.socket_dir}")
            done = self.run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                            "-s", "-o", options)
            if done.returncode == 0:
                return port
            log = self.log_tail()
            if "could not bind" not in log and "already in use" not in log:
                raise PostgresUnavailable(f"pg_ctl start failed:\n{done.stdout}{done.stderr}{log}")
        raise PostgresUnavailable(f"no free port for PostgreSQL after 5 tries:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start_watchdog(self) -> None:
        """A process that stops the server and removes its directory once our pipe to it closes."""
        code = ("import sys, subprocess, shutil\n"
                "sys.stdin.buffer.read()\n"
                "subprocess.run(sys.argv[1:4] + ['-m', 'immediate', '-s', '-w', '-t', '20'], "
                "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd='/'"
                + (f", user={self.account.uid}, group={self.account.gid}, extra_groups=[]"
                   if self.account.uid is not None else "")
                + ")\nshutil.rmtree(sys.argv[4], ignore_errors=True)\n")
        # A session of its own: a Ctrl-C meant for the tests must not kill the cleaner too.
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", code, str(self.bin_dir / "pg_ctl"), "stop", f"-D{self.data}", str(self.base)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        """Stop the server (fast, else immediate, else SIGKILL) and remove everything."""
        try:
            if (self.data / "postmaster.pid").exists():
                for mode in ("fast", "immediate"):
                    try:
                        if self.run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "20",
                                    "-s", timeout=30).returncode == 0:
                            break
                    except subprocess.TimeoutExpired:
                        pass
                self._kill_leftover()
        finally:
            if self.watchdog is not None:
                assert self.watchdog.stdin is not None
                self.watchdog.stdin.close()
                try:
                    self.watchdog.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.watchdog.kill()
                    self.watchdog.wait()
            shutil.rmtree(self.base, ignore_errors=True)

    def _kill_leftover(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.killpg(pid, signal.SIGKILL)  # the postmaster leads its children's group
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _no_binaries_message() -> str:
    return ("no PostgreSQL server binaries found (initdb, pg_ctl, postgres): looked in "
            f"${BIN_DIR_ENV}, PATH, /usr/lib/postgresql/*/bin and the pgserver package. "
            "Install Debian's `postgresql` package, or run `make .venv/.postgres` (pgserver from PyPI), "
            f"or point {BIN_DIR_ENV} at a directory holding them")


@contextmanager
def running_postgres(*, settings: dict[str, str] | None = None, parent_dir: Path | None = None
                     ) -> Iterator[PostgresServer]:
    """Start a throw-away PostgreSQL server, yield how to reach it, then stop it and remove its files.

    ``settings`` are added to (and override) :data:`TEST_SETTINGS`; ``parent_dir``
    is where its directory is made (default: the system temp dir; it must be
    reachable by ``nobody`` when this process is root). Raises
    :class:`PostgresUnavailable` when no server can be started.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable(_no_binaries_message())
    cluster = _Cluster(bin_dir, _account(), parent_dir)
    try:
        password = secrets.token_urlsafe(18)
        cluster.init(password, {**TEST_SETTINGS, **(settings or {})})
        cluster.start_watchdog()
        port = cluster.start()
        version = cluster.run("postgres", "--version").stdout.strip()
        server = PostgresServer(host="127.0.0.1", port=port, user=SUPERUSER, password=password,
                                socket_dir=cluster.socket_dir, bin_dir=cluster.bin_dir, version=version)
        yield server
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m meerkat.testing.postgres``: serve a test server until Ctrl-C, or ``--check`` binaries."""
    parser = argparse.ArgumentParser(prog="python -m meerkat.testing.postgres",
                                     description="A throw-away PostgreSQL server on loopback, for tests and benches.")
    parser.add_argument("--check", action="store_true",
                        help="only print the directory of the server binaries (exit 1 if there is none)")
    args = parser.parse_args(argv)
    if args.check:
        found = find_bin_dir()
        print(found if found is not None else _no_binaries_message(), file=sys.stdout if found else sys.stderr)
        return 0 if found is not None else 1
    try:
        with running_postgres() as server:
            print(server.url(), flush=True)
            print(f"# {server.version}; Ctrl-C stops it and removes its files", file=sys.stderr, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    except PostgresUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
