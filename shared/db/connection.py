"""Connections: Azure SQL through pyodbc with a managed-identity token; embedded SQLite locally.

Azure SQL (see ../../sql/README.md):
- ODBC Driver 18, `Encrypt=yes`, `TrustServerCertificate=no`.
- An Entra access token from the process credential, fresh per connection, passed as the pre-connect
  attribute SQL_COPT_SS_ACCESS_TOKEN (1256): a 4-byte little-endian length then the UTF-16-LE token.
  The connection string carries no UID, PWD, Authentication or Trusted_Connection.
- Always Encrypted adds `ColumnEncryption=Enabled;KeyStoreAuthentication=KeyVaultManagedIdentity`.
- Transient errors (throttling, failover, reconfiguration) are retried with exponential backoff and a
  bound; then the call fails closed with `DependencyUnavailable("sql")`.

Locally, with no `SQL_SERVER`, the embedded default is stdlib sqlite3 (Development only).
`odbc_connection_string` lets tests drive pyodbc with the SQLite ODBC driver (`DRIVER=SQLite3;...`).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError

from shared.config import Settings, SettingsError, SqlSettings
from shared.errors import AppError, Conflict, DependencyUnavailable

logger = logging.getLogger(__name__)

SQL_COPT_SS_ACCESS_TOKEN = 1256
SQL_SCOPE = "https://database.windows.net/.default"
# Azure SQL transient error numbers (learn.microsoft.com: "Troubleshoot transient connection errors").
TRANSIENT_ERRORS = frozenset(
    {4060, 4221, 10053, 10054, 10060, 10928, 10929, 18401, 40143, 40197, 40501, 40540, 40613, 42108, 42109,
     49918, 49919, 49920}
)  # fmt: skip
# ODBC SQLSTATEs for a lost or refused link and a timeout: retrying a whole unit of work is safe.
TRANSIENT_SQLSTATES = frozenset({"08001", "08S01", "HYT00", "HYT01", "40001"})
_NATIVE_NUMBER = re.compile(r"\((\d{3,6})\)")

Dialect = Literal["sqlite", "mssql"]
T = TypeVar("T")


class Cursor(Protocol):
    rowcount: int

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class DatabaseError(AppError):
    """A non-transient database failure; its text is fixed (driver messages may quote values)."""

    status, code, title = 500, "database_error", "The database could not complete the request"


def pack_access_token(token: str) -> bytes:
    """SQL_COPT_SS_ACCESS_TOKEN layout: 4-byte little-endian length, then the UTF-16-LE token bytes."""
    raw = token.encode("utf-16-le")
    return struct.pack(f"<I{len(raw)}s", len(raw), raw)


def azure_connection_string(sql: SqlSettings) -> str:
    if sql.server is None or sql.database is None:
        raise SettingsError("SQL_SERVER", "and SQL_DATABASE are required for Azure SQL")
    server = sql.server if sql.server.startswith("tcp:") else f"tcp:{sql.server},1433"
    parts = [
        f"Driver={{{sql.driver}}}",
        f"Server={server}",
        f"Database={sql.database}",
        "Encrypt=yes",
        "TrustServerCertificate=no",
        "Connection Timeout=30",
    ]
    if sql.always_encrypted:
        parts += ["ColumnEncryption=Enabled", "KeyStoreAuthentication=KeyVaultManagedIdentity"]
    return ";".join(parts) + ";"


def odbc_error_numbers(exc: BaseException) -> tuple[str | None, set[int]]:
    """(SQLSTATE, native error numbers) from a pyodbc error: args are (sqlstate, message)."""
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    state = args[0] if args and isinstance(args[0], str) else None
    message = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
    return state, {int(n) for n in _NATIVE_NUMBER.findall(message)}


def is_transient(exc: BaseException) -> bool:
    state, numbers = odbc_error_numbers(exc)
    return bool(numbers & TRANSIENT_ERRORS) or state in TRANSIENT_SQLSTATES


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2**attempt)))


class Database:
    """Runs units of work in transactions: commit on success, roll back on any error, retry transients.

    `run(work)` calls `work(cursor)` inside one transaction; a transient failure retries the whole unit,
    so `work` must only touch the database.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        dialect: Dialect,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transient: Callable[[BaseException], bool] = is_transient,
        driver_errors: tuple[type[BaseException], ...] = (),
        shared_connection: bool = False,
    ) -> None:
        self._connect = connect
        self.dialect: Dialect = dialect
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._transient = transient
        self._driver_errors = driver_errors
        self._shared: Any = None
        self._shared_mode = shared_connection
        self._lock = threading.RLock()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._shared_mode:
            with self._lock:
                if self._shared is None:
                    self._shared = self._connect()
                yield self._shared
            return
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    def run(self, work: Callable[[Cursor], T]) -> T:
        attempt = 0
        while True:
            try:
                return self._run_once(work)
            except self._driver_errors as exc:
                if not self._transient(exc):
                    # Driver messages can quote values (SQL Server's duplicate-key error names the key),
                    # so they never travel on: a fixed-text error with the SQLSTATE only.
                    state, _ = odbc_error_numbers(exc)
                    integrity = (state or "").startswith("23") or type(exc).__name__ == "IntegrityError"
                    failure: AppError = Conflict("constraint_violation") if integrity else DatabaseError()
                    logger.warning("SQL error", extra={"sqlstate": state, "error_type": type(exc).__name__})
                    raise failure from None
                if attempt + 1 >= self._retry.attempts:
                    logger.warning("SQL still failing after retries", extra={"attempts": attempt + 1})
                    raise DependencyUnavailable("sql") from None
                state, _ = odbc_error_numbers(exc)
                logger.info(
                    "Transient SQL error; retrying", extra={"sqlstate": state, "attempt": attempt + 1}
                )
                self._sleep(self._retry.delay(attempt))
                attempt += 1

    def _run_once(self, work: Callable[[Cursor], T]) -> T:
        with self._connection() as conn:
            cursor = conn.cursor()
            try:
                result = work(cursor)
            except BaseException:
                conn.rollback()
                raise
            else:
                conn.commit()
                return result
            finally:
                cursor.close()

    def close(self) -> None:
        with self._lock:
            if self._shared is not None:
                self._shared.close()
                self._shared = None


def _pyodbc() -> Any:
    import pyodbc  # imported lazily: the embedded sqlite path must not need unixODBC

    return pyodbc


def azure_sql_database(
    sql: SqlSettings, credential: TokenCredential, *, retry: RetryPolicy | None = None, **kwargs: Any
) -> Database:
    pyodbc = _pyodbc()
    conn_str = azure_connection_string(sql)

    def connect() -> Any:
        try:
            token = credential.get_token(SQL_SCOPE).token  # fresh per connection; the SDK caches it
        except AzureError:
            raise DependencyUnavailable("sql", "sql_token_unavailable") from None
        return pyodbc.connect(
            conn_str, attrs_before={SQL_COPT_SS_ACCESS_TOKEN: pack_access_token(token)}, autocommit=False
        )

    return Database(connect, "mssql", retry=retry, driver_errors=(pyodbc.Error,), **kwargs)


def odbc_database(connection_string: str, dialect: Dialect = "sqlite", **kwargs: Any) -> Database:
    """A pyodbc database from a plain connection string (tests: `DRIVER=SQLite3;Database=<file>`)."""
    pyodbc = _pyodbc()

    def connect() -> Any:
        conn = pyodbc.connect(connection_string, autocommit=False)
        return conn

    return Database(connect, dialect, driver_errors=(pyodbc.Error,), **kwargs)


def sqlite_database(path: str) -> Database:
    """The embedded local default. `:memory:` keeps one shared connection (each would be a new DB)."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    return Database(connect, "sqlite", driver_errors=(sqlite3.Error,), transient=_sqlite_busy,
                    shared_connection=path == ":memory:")  # fmt: skip


def _sqlite_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def build_database(settings: Settings, credential_factory: Callable[[], TokenCredential]) -> Database:
    if settings.sql.use_embedded:
        if not settings.is_development:
            raise SettingsError("SQL_SERVER", "is required outside Development")
        return sqlite_database(settings.sql.sqlite_path)
    return azure_sql_database(settings.sql, credential_factory())
