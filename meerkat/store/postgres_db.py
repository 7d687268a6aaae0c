"""One PostgreSQL database as the store's worker threads use it: a connection pool and transactions.

The driver is psycopg 3's synchronous API with a :class:`psycopg_pool.ConnectionPool`:
no mature PostgreSQL driver runs natively under trio, and the store interface is
synchronous anyway, so the actors call the store from worker threads
(``actors/storeio.py``) and each call borrows one pooled connection for one
transaction.

Connections: the pool holds up to ``pool_size`` of them. A connection handed
out is checked first (one empty round trip), so a connection the server dropped
while it sat idle (a restart, ``pg_terminate_backend``) is replaced instead of
failing the next call. A connection lost *during* a call fails that call with
:class:`~meerkat.errors.StoreError` and its transaction is rolled back by the
server: nothing half-written. Statements repeated on a connection are prepared
by psycopg after :data:`PREPARE_THRESHOLD` uses.

Secrets: the password may come from the URL, ``PGPASSWORD`` or ``~/.pgpass``
(libpq reads both). Error messages name the database by its redacted URL
(:func:`meerkat.dburl.redact_url`: user, host, port, dbname) and never the
password; any text from the server or driver is scrubbed of it too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..dburl import redact_url, scrub_secrets
from ..errors import StoreError

__all__ = ["PostgresDatabase", "DEFAULT_POOL_SIZE", "PREPARE_THRESHOLD"]

T = TypeVar("T")

#: Connections per pool when the caller does not say (one per busy store worker thread).
DEFAULT_POOL_SIZE = 4
#: psycopg prepares a statement server-side after this many executions on a connection.
PREPARE_THRESHOLD = 5
#: How long a call waits for a free pooled connection (or a reconnect) before failing.
DEFAULT_POOL_TIMEOUT = 10.0
#: Transient conflicts PostgreSQL resolves by aborting one transaction: retried whole.
_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_RETRIES = 5
#: How long a statement waits for a row another transaction holds before the call fails.
DEFAULT_LOCK_TIMEOUT = 30.0
#: A transaction left open this long by a host that stopped talking (hung, partitioned)
#: is ended by the server, releasing its row locks; the store's own never idle that long.
IDLE_IN_TRANSACTION_TIMEOUT = 60.0
#: Connection settings applied unless the URL sets them: fail fast, notice a dead peer.
_CONNECT_DEFAULTS = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "30",
                     "keepalives_interval": "10", "keepalives_count": "3", "application_name": "rkat"}


class PostgresDatabase:
    """A pool of connections to one database, and the transaction helper every store method uses."""

    def __init__(self, url: str, *, pool_size: int = DEFAULT_POOL_SIZE, timeout: float = DEFAULT_POOL_TIMEOUT,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """Open the pool (StoreError naming the database if it cannot connect).

        ``timeout``: how long a call waits for a pooled connection;
        ``lock_timeout``: how long a statement waits for a row lock (a call
        never waits forever on a host that hung mid-transaction).
        """
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.target = redact_url(url)
        self._url = url
        self._closed = threading.Event()
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise self.error(exc, "invalid database URL") from None
        kwargs: dict[str, Any] = {key: value for key, value in _CONNECT_DEFAULTS.items() if key not in params}
        kwargs["prepare_threshold"] = PREPARE_THRESHOLD
        settings = (f"-c lock_timeout={int(lock_timeout * 1000)} "
                    f"-c idle_in_transaction_session_timeout={int(IDLE_IN_TRANSACTION_TIMEOUT * 1000)}")
        kwargs["options"] = f"{params['options']} {settings}" if params.get("options") else settings
        # One direct connection first: a refusal then says why (the pool would only time out).
        try:
            psycopg.connect(url, **kwargs).close()
        except psycopg.Error as exc:
            raise self.error(exc) from None
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, kwargs=kwargs, min_size=1, max_size=pool_size, open=False, timeout=timeout,
            check=ConnectionPool.check_connection, name=f"rkat {self.target}", reconnect_timeout=timeout * 6)
        try:
            self.pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            self.pool.close()
            raise self.error(exc) from None

    def error(self, exc: BaseException, what: str = "") -> StoreError:
        """A StoreError naming the database (never its password) and what failed."""
        detail = str(exc).strip() or type(exc).__name__
        if isinstance(exc, PoolTimeout):
            detail = f"no database connection within the pool timeout ({detail})"
        detail = scrub_secrets(detail, self._url)
        return StoreError(f"postgres store {self.target}: {what + ': ' if what else ''}{detail}")

    def run(self, body: Callable[[psycopg.Connection[Any]], T], *, what: str = "",
            repeatable_read: bool = False) -> T:
        """Run ``body`` in one transaction on a pooled connection; commit if it returns, roll back if it raises.

        Database errors become :class:`StoreError`; a deadlock or serialization
        failure (the server rolled the whole transaction back) is retried.
        ``repeatable_read``: every statement of ``body`` sees one snapshot.
        """
        if self._closed.is_set():
            raise StoreError(f"postgres store {self.target}: the store is closed")
        for attempt in range(_RETRIES):
            try:
                with self.pool.connection() as conn:
                    if repeatable_read:
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    return body(conn)  # the pool's context commits on return, rolls back on raise
            except _RETRIED as exc:
                if attempt == _RETRIES - 1:
                    raise self.error(exc, what) from None
                time.sleep(0.005 * (attempt + 1))
            except psycopg.Error as exc:
                raise self.error(exc, what) from None
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise self.error(exc, f"{what + ': ' if what else ''}undecodable stored record") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        if not self._closed.is_set():
            self._closed.set()
            self.pool.close()
