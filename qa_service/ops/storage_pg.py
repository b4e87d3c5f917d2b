"""PostgreSQL as the feedback store, for a ``QA_FEEDBACK_DB`` that is a ``postgresql://`` URL: several
replicas of the service share one database. The only module that imports psycopg (imported only when
such a URL is configured, so SQLite users load nothing of it).

The same schema, statements, scrubbing and retention purge as SQLite (``SqlFeedbackStore``); each
operation borrows a connection from a pool (psycopg_pool, up to ``QA_FEEDBACK_POOL_SIZE`` per
process) and runs as one transaction, committed before the call returns. Commits are synchronous
(the server's default; nothing here turns ``synchronous_commit`` off), so a vote acknowledged with
201 is on the database server's disk. A lost connection is replaced by the pool: while the server is
unreachable, writes fail with StorageError (503 to the caller) and succeed again once it is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from qa_service.errors import StorageError
from qa_service.ops.migrations import Cursor
from qa_service.ops.storage import SqlFeedbackStore

CONNECT_TIMEOUT_S = 10  # to open the pool, and to wait for a free connection


def redact(url: str) -> str:
    """The URL without its password (errors and logs name the database this way)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


class PostgresFeedbackStore(SqlFeedbackStore):
    dialect = "postgresql"
    placeholder = "%s"

    def __init__(
        self, url: str, *, retention_days: float, pool_size: int = 10, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(redact(url), retention_days=retention_days, clock=clock)
        connection = {"application_name": "qa-service", "connect_timeout": CONNECT_TIMEOUT_S}
        try:  # one connection first: it says why when the server cannot be reached (the pool only retries)
            psycopg.connect(url, **connection).close()  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise StorageError(f"{self.name}: cannot open the feedback database: {_reason(exc)}") from None
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=CONNECT_TIMEOUT_S,
            kwargs=connection,
            name="qa-feedback",
            check=ConnectionPool.check_connection,  # one the server dropped (restart, failover) is replaced
            open=False,
        )
        self._pool.open()
        try:
            self.migration = self.migrate_schema()
            self.purge_expired()
        except StorageError:
            self._pool.close()
            raise

    @contextmanager
    def _transaction(self, action: str, *, write: bool = True) -> Iterator[Cursor]:
        try:
            with self._pool.connection() as connection, connection.transaction(), connection.cursor() as cursor:
                yield cursor
        except psycopg.Error as exc:
            raise StorageError(f"{self.name}: cannot {action}: {_reason(exc)}") from None

    def close(self) -> None:
        self._pool.close()


def _reason(exc: psycopg.Error) -> str:
    """The driver's message on one line (libpq's span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__
