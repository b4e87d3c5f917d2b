"""What the clinic learns from real use: answer feedback and the questions the FAQ could not answer.

Behind a small interface (``FeedbackStore``) with two backends sharing one schema
(``qa_service.ops.migrations``) and the same statements (``SqlFeedbackStore``): SQLite in WAL mode with
full syncs, the default, for a file path; PostgreSQL (``qa_service.ops.storage_pg``, imported only
then) for a ``postgresql://`` URL, so several replicas can share one store. Either way a write is
committed before it returns, so it survives the process being killed. Text is scrubbed of personal
identifiers before it is stored (``privacy.scrub``), and stored questions expire after the retention
period: expired rows are deleted when the store opens and on every write.

Unanswered questions are recorded off the request path (``UnansweredRecorder``): a writer thread
commits whatever has queued since its last commit in one transaction, so 32 questions declined
together cost one sync, not 32, and no request waits for the disk.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from qa_service.errors import StorageError
from qa_service.ops.migrations import MIGRATIONS, Cursor, Dialect, Migration, MigrationResult, migrate
from qa_service.ops.privacy import scrub

if TYPE_CHECKING:
    from qa_service.ops.storage_pg import PostgresFeedbackStore
    from qa_service.settings import Settings

DAY = 86400.0
POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")

UnansweredStatus = Literal["no_answer", "clarify"]
UnansweredRecord = tuple[str, UnansweredStatus, list[str]]  # question, status, candidate ids

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feedback:
    answer_id: str
    helpful: bool
    reason: str | None
    question: str | None
    created_at: float


@dataclass(frozen=True)
class Unanswered:
    question: str
    status: str
    candidates: list[str]  # ids offered (clarify) or the closest ones (no_answer)
    created_at: float


class FeedbackStore(Protocol):
    def add_feedback(self, answer_id: str, helpful: bool, reason: str | None, question: str | None) -> None: ...
    def add_unanswered(self, question: str, status: UnansweredStatus, candidates: list[str]) -> None: ...
    def add_unanswered_many(self, records: Sequence[UnansweredRecord]) -> None: ...
    def feedback(self) -> list[Feedback]: ...
    def unanswered(self) -> list[Unanswered]: ...
    def purge_expired(self) -> int: ...
    def close(self) -> None: ...


class SqlFeedbackStore(ABC):
    """The statements, scrubbing and retention both backends share; a backend supplies transactions
    (``_transaction``, which maps its driver's errors to StorageError) and its parameter marker."""

    dialect: Dialect = "sqlite"
    placeholder = "?"

    def __init__(self, name: str, *, retention_days: float, clock: Callable[[], float]) -> None:
        self.name = name  # names the database in errors (a URL without its password)
        self.retention_seconds = retention_days * DAY
        self._now = clock

    @abstractmethod
    def _transaction(self, action: str, *, write: bool = True) -> AbstractContextManager[Cursor]:
        """A transaction's cursor: committed when the block ends, rolled back if it raises; driver
        errors become StorageError naming the database and ``action``."""

    @abstractmethod
    def close(self) -> None: ...

    def _sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def migrate_schema(self, migrations: Sequence[Migration] = MIGRATIONS) -> MigrationResult:
        """Apply the migrations the database has not had, in one transaction (the stores do when they open)."""
        with self._transaction("migrate the feedback database") as cursor:
            return migrate(cursor, self.dialect, name=self.name, migrations=migrations)

    def _purge(self, cursor: Cursor) -> int:
        cutoff = self._now() - self.retention_seconds
        cursor.execute(self._sql("DELETE FROM unanswered WHERE created_at < ?"), (cutoff,))
        gone = cursor.rowcount
        cursor.execute(
            self._sql("UPDATE feedback SET question = NULL WHERE created_at < ? AND question IS NOT NULL"), (cutoff,)
        )
        return gone + cursor.rowcount

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Insert ``rows`` in one transaction (all or none), expiring old rows in the same one."""
        with self._transaction("write feedback") as cursor:
            cursor.executemany(self._sql(sql), rows)
            self._purge(cursor)

    def _read(self, sql: str) -> list[Any]:
        with self._transaction("read feedback", write=False) as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    def add_feedback(self, answer_id: str, helpful: bool, reason: str | None, question: str | None) -> None:
        self._write(
            "INSERT INTO feedback (answer_id, helpful, reason, question, created_at) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    answer_id,
                    helpful,
                    scrub(reason) if reason else None,
                    scrub(question) if question else None,
                    self._now(),
                )
            ],
        )

    def add_unanswered(self, question: str, status: UnansweredStatus, candidates: list[str]) -> None:
        self.add_unanswered_many([(question, status, candidates)])

    def add_unanswered_many(self, records: Sequence[UnansweredRecord]) -> None:
        """Several unanswered questions in one transaction (one sync)."""
        now = self._now()
        self._write(
            "INSERT INTO unanswered (question, status, candidates, created_at) VALUES (?, ?, ?, ?)",
            [(scrub(question), status, " ".join(candidates), now) for question, status, candidates in records],
        )

    def feedback(self) -> list[Feedback]:
        rows = self._read("SELECT answer_id, helpful, reason, question, created_at FROM feedback ORDER BY id")
        return [Feedback(r[0], bool(r[1]), r[2], r[3], r[4]) for r in rows]

    def unanswered(self) -> list[Unanswered]:
        rows = self._read("SELECT question, status, candidates, created_at FROM unanswered ORDER BY id")
        return [Unanswered(r[0], r[1], r[2].split(), r[3]) for r in rows]

    def purge_expired(self) -> int:
        """Delete stored questions older than the retention period; returns how many went."""
        with self._transaction("purge expired feedback") as cursor:
            return self._purge(cursor)


class SQLiteFeedbackStore(SqlFeedbackStore):
    """SQLite with WAL and synchronous=FULL; one connection guarded by a lock (FastAPI runs sync
    routes on a thread pool)."""

    def __init__(self, path: Path, *, retention_days: float, clock: Callable[[], float] = time.time) -> None:
        super().__init__(str(path), retention_days=retention_days, clock=clock)
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
            self._db.execute("PRAGMA busy_timeout=5000")
            _switch_to_wal(self._db)
            self._db.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{path}: cannot open the feedback database: {exc}") from None
        self.migration = self.migrate_schema()
        self.purge_expired()

    @contextmanager
    def _transaction(self, action: str, *, write: bool = True) -> Iterator[Cursor]:
        with self._lock:
            try:
                cursor = self._db.cursor()
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield cursor
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: cannot {action}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _switch_to_wal(db: sqlite3.Connection, attempts: int = 50) -> None:
    """WAL mode; a new file opened by several processes at once may report "locked" to all but one
    while the first switches it (SQLite does not wait on its busy timeout there): try again."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


def is_postgresql_url(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRESQL_SCHEMES)


def open_feedback_store(
    target: Path | str, *, retention_days: float, pool_size: int = 10, clock: Callable[[], float] = time.time
) -> SQLiteFeedbackStore | PostgresFeedbackStore:
    """The store ``QA_FEEDBACK_DB`` names, its schema migrated: PostgreSQL for a ``postgresql://`` (or
    ``postgres://``) URL, SQLite for a file path. StorageError when it cannot be opened."""
    if is_postgresql_url(target):
        from qa_service.ops.storage_pg import PostgresFeedbackStore

        return PostgresFeedbackStore(str(target), retention_days=retention_days, pool_size=pool_size, clock=clock)
    return SQLiteFeedbackStore(Path(target), retention_days=retention_days, clock=clock)


def feedback_store_from_settings(settings: Settings) -> SQLiteFeedbackStore | PostgresFeedbackStore:
    """The store ``QA_FEEDBACK_DB`` names, opened with its retention and pool settings."""
    return open_feedback_store(
        settings.feedback_db, retention_days=settings.retention_days, pool_size=settings.feedback_pool_size
    )


class UnansweredRecorder:
    """Writes unanswered questions to a store on its own thread, in groups.

    ``record`` only queues (it never waits for the disk); the writer commits everything queued since
    its last commit in one transaction. ``flush`` waits until all queued records are committed (or
    have failed: failures are logged, as recording is not part of the answer); ``close`` flushes and
    stops the writer. Past ``limit`` waiting records (a stalled disk) new ones are dropped, logged."""

    def __init__(self, store: FeedbackStore, *, limit: int = 10_000) -> None:
        self._store = store
        self._queue: queue.Queue[UnansweredRecord | None] = queue.Queue(limit)
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="qa-recorder", daemon=True)
        self._thread.start()

    def record(self, question: str, status: UnansweredStatus, candidates: list[str]) -> None:
        try:
            self._queue.put_nowait((question, status, candidates))
        except queue.Full:
            self._dropped += 1
            logger.warning(
                "unanswered question not recorded: %d are waiting to be written (%d dropped so far)",
                self._queue.maxsize,
                self._dropped,
            )

    def flush(self) -> None:
        self._queue.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            taken = [self._queue.get()]
            while True:
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [item for item in taken if item is not None]
            stopping = len(records) < len(taken)
            try:
                if records:
                    self._store.add_unanswered_many(records)
            except StorageError as exc:
                logger.warning("%d unanswered questions not recorded: %s", len(records), exc.message)
            except Exception:  # the writer must outlive any one bad group
                logger.exception("%d unanswered questions not recorded", len(records))
            finally:
                for _ in taken:
                    self._queue.task_done()
