"""PostgreSQL database URLs: which database a realm lives in, shown without its secrets.

A realm on the ``postgres`` backend is reached through a libpq URL
(``postgresql://user:password@host:port/dbname?sslmode=require``), given as
``--database-url`` or ``$RKAT_DATABASE_URL``. The password may be in the URL, in
``$PGPASSWORD`` or in ``~/.pgpass`` (libpq reads the last two itself), and it must
never reach a manifest, a config, a log line, an error or a health answer. So
every place that shows a URL shows :func:`redact_url` of it (user, host, port,
database name and a few harmless parameters such as ``sslmode``; never the
password or any other parameter), and :class:`DatabaseIdentity` is what a realm
manifest records. Nothing here connects to anything.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from meerkat.errors import InvalidParams

__all__ = ["DATABASE_URL_ENV", "DatabaseIdentity", "database_url", "parse_database_url", "redact_url",
           "scrub_secrets"]

#: The environment variable holding the URL when ``--database-url`` is not given.
DATABASE_URL_ENV = "RKAT_DATABASE_URL"

_SCHEMES = ("postgresql://", "postgres://")
#: Query parameters safe to show (anything else, ``password`` above all, is dropped from shown URLs).
_SHOWN_PARAMS = ("host", "port", "dbname", "user", "sslmode", "target_session_attrs", "connect_timeout", "application_name")
_DEFAULT_PORT = 5432


@dataclass(frozen=True, slots=True)
class DatabaseIdentity:
    """Which database, without secrets: what a postgres realm's manifest records.

    ``database_id`` is the id the database itself carries (written once, when rkat
    first creates its tables there): two URLs spelling one server differently
    (``localhost`` and ``127.0.0.1``, a DNS alias) reach the same id, and a
    restored copy on another server keeps it. Empty until the database was read.
    """

    host: str
    port: int
    dbname: str
    user: str
    database_id: str = ""

    def display(self) -> str:
        """``postgresql://user@host:port/dbname``, for messages."""
        user = f"{quote(self.user, safe='')}@" if self.user else ""
        return f"postgresql://{user}{self.host}:{self.port}/{quote(self.dbname, safe='')}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object a manifest holds."""
        return {"host": self.host, "port": self.port, "dbname": self.dbname, "user": self.user,
                "database_id": self.database_id}

    @classmethod
    def from_dict(cls, data: Any) -> DatabaseIdentity:
        """Parse a manifest's ``database`` object; ``ValueError`` says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("'database' is not a JSON object")
        for key in ("host", "dbname", "user", "database_id"):
            if not isinstance(data.get(key), str):
                raise ValueError(f"missing or non-string database.{key}")
        if type(data.get("port")) is not int:
            raise ValueError("missing or non-integer database.port")
        return cls(data["host"], data["port"], data["dbname"], data["user"], data["database_id"])


def database_url(flag: str | None) -> str | None:
    """The URL to use: ``flag`` (``--database-url``), else ``$RKAT_DATABASE_URL``, else None (empty is unset)."""
    if flag:
        return flag
    return os.environ.get(DATABASE_URL_ENV) or None


def _split(url: str) -> tuple[str, str, str, str, list[tuple[str, str]]]:
    """(user, password, hosts, dbname, params) of a ``postgresql://`` URL; InvalidParams if it is not one.

    Parsed by hand rather than with ``urlsplit``: libpq allows several ``host:port``
    pairs (``h1:5432,h2:5433``) that ``urlsplit`` refuses. Messages never quote the URL.
    """
    scheme = next((s for s in _SCHEMES if url.startswith(s)), None)
    if scheme is None:
        raise InvalidParams("invalid database URL: expected postgresql://[user[:password]@]host[:port]/dbname "
                            f"(got {redact_url(url)})")
    rest = url[len(scheme):]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        if _password_spills(netloc, path, query):
            raise InvalidParams("invalid database URL: percent-encode '/', '?', '#' and '@' in its user and "
                                "password (%2F, %3F, %23, %40), or give the password in PGPASSWORD")
        userinfo, hosts = "", netloc
    user, _, password = userinfo.partition(":")
    try:
        params = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidParams(f"invalid database URL: its query string is malformed ({redact_url(url)})") from None
    return unquote(user), unquote(password), unquote(hosts), unquote(path), params


def parse_database_url(url: str) -> DatabaseIdentity:
    """Who and where ``url`` points (libpq's defaults filled in); :class:`InvalidParams` if it is no URL.

    Defaults as libpq: host ``$PGHOST`` (else the local socket, shown as
    ``localhost``), port ``$PGPORT`` or 5432, user ``$PGUSER`` or the login name,
    database ``$PGDATABASE`` or the user name. Query parameters override the URL's parts.
    """
    user, _password, hosts, dbname, params = _split(url)
    query = dict(params)
    host, port_text = _host_and_port(hosts)
    host = query.get("host", host) or os.environ.get("PGHOST", "") or "localhost"
    port_text = query.get("port", port_text) or os.environ.get("PGPORT", "")
    try:
        port = int(port_text) if port_text else _DEFAULT_PORT
    except ValueError:
        raise InvalidParams(f"invalid database URL: port {port_text!r} is not a number ({redact_url(url)})") from None
    user = query.get("user", user) or os.environ.get("PGUSER", "") or _login_name()
    dbname = query.get("dbname", dbname) or os.environ.get("PGDATABASE", "") or user
    return DatabaseIdentity(host=host, port=port, dbname=dbname, user=user)


def _host_and_port(hosts: str) -> tuple[str, str]:
    """``host:port`` split; several hosts (``h1:5432,h2:5433``) are kept whole, as libpq takes them."""
    if "," in hosts:
        return hosts, ""
    if hosts.startswith("["):  # [::1]:5432
        host, _, rest = hosts[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = hosts.partition(":")
    return host, port


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def redact_url(url: str) -> str:
    """``url`` safe to show: user, hosts, port, database and harmless parameters; never the password.

    Never raises: something that is not a PostgreSQL URL at all (a key=value
    conninfo string, a typo) is shown as a placeholder, since it may hold a password
    anywhere.
    """
    scheme = next((s for s in _SCHEMES if url.startswith(s)), None)
    if scheme is None:
        return "<not a postgresql:// URL>"
    rest = url[len(scheme):]
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at and _password_spills(netloc, path, query):
        return _SPILLED
    user = userinfo.partition(":")[0] if at else ""
    shown = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in _SHOWN_PARAMS]
    text = f"{scheme}{user + '@' if user else ''}{hosts if at else netloc}{slash}{path}"
    return f"{text}?{urlencode(shown)}" if shown else text


#: What :func:`redact_url` shows for a URL whose password holds an unencoded ``/``, ``?`` or ``#``.
_SPILLED = "<a postgresql:// URL whose user or password has an unencoded '/', '?' or '#'>"


def _password_spills(netloc: str, path: str, query: str) -> bool:
    """Whether a URL with no ``@`` before its first ``/`` or ``?`` may still hold a password.

    ``postgresql://bob:pa/ss@host/db`` (a generated password with ``/``, ``?`` or
    ``#``, not percent-encoded) splits at that character: what looks like
    ``host:port`` and a database name is the user and the password. A real host
    list has numeric ports, a database name no ``@``, and the query an ``@`` only
    inside a value (``?user=a@b``); anything else is shown as a placeholder.
    """
    for host in netloc.split(","):
        if host.startswith("["):
            port = host.partition("]")[2].removeprefix(":")
        else:
            port = host.partition(":")[2]
        if port and not port.isdigit():
            return True
    if "@" in path or "#" in netloc:
        return True
    return any("@" in pair.partition("=")[0] for pair in query.split("&"))


def scrub_secrets(text: str, url: str | None) -> str:
    """``text`` (say, a driver's error message) with ``url`` and its password replaced by their redacted forms.

    Drivers do not normally repeat a password, but an error that quotes the
    connection string would; this is the last line before anything is shown.
    """
    if not url:
        return text
    text = text.replace(url, redact_url(url))
    try:
        password = _split(url)[1]
    except InvalidParams:
        return text
    for secret in {password, quote(password, safe="")} - {""}:
        text = text.replace(secret, "***")
    return text
