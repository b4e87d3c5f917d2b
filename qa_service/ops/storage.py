"""What the clinic learns from real use: answer feedback and the questions the FAQ could not answer.

Behind a small interface (``FeedbackStore``); the default is SQLite in WAL mode with full syncs, so a
committed write survives the process being killed. Text is scrubbed of personal identifiers before
it is stored (``privacy.scrub``), and stored questions expire after the retention period: expired
rows are deleted when the store opens and on every write.

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from qa_service.errors import StorageError
from qa_service.ops.privacy import scrub

SCHEMA_VERSION = 1
DAY = 86400.0

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


class SQLiteFeedbackStore:
    """SQLite with WAL and synchronous=FULL; one connection guarded by a lock (FastAPI runs sync
    routes on a thread pool)."""

    def __init__(self, path: Path, *, retention_days: float, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.retention_seconds = retention_days * DAY
        self._now = clock
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"{path}: cannot open the feedback database: {exc}") from None
        self.purge_expired()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path}: database schema {version} is newer than this version ({SCHEMA_VERSION})")
        with self._transaction():
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, answer_id TEXT NOT NULL, "
                "helpful INTEGER NOT NULL, reason TEXT, question TEXT, created_at REAL NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS unanswered (id INTEGER PRIMARY KEY, question TEXT NOT NULL, "
                "status TEXT NOT NULL, candidates TEXT NOT NULL, created_at REAL NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS feedback_created ON feedback(created_at)")
            self._db.execute("CREATE INDEX IF NOT EXISTS unanswered_created ON unanswered(created_at)")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        """Insert ``rows`` in one transaction (all or none), expiring old rows in the same one."""
        cutoff = self._now() - self.retention_seconds
        with self._lock:
            try:
                with self._transaction():
                    self._db.executemany(sql, rows)
                    self._db.execute("DELETE FROM unanswered WHERE created_at < ?", (cutoff,))
                    self._db.execute("UPDATE feedback SET question = NULL WHERE created_at < ?", (cutoff,))
            except sqlite3.Error as exc:
                raise StorageError(f"{self.path}: cannot write feedback: {exc}") from None

    def add_feedback(self, answer_id: str, helpful: bool, reason: str | None, question: str | None) -> None:
        self._write(
            "INSERT INTO feedback (answer_id, helpful, reason, question, created_at) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    answer_id,
                    int(helpful),
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
        with self._lock:
            rows = self._db.execute(
                "SELECT answer_id, helpful, reason, question, created_at FROM feedback ORDER BY id"
            ).fetchall()
        return [Feedback(r[0], bool(r[1]), r[2], r[3], r[4]) for r in rows]

    def unanswered(self) -> list[Unanswered]:
        with self._lock:
            rows = self._db.execute(
                "SELECT question, status, candidates, created_at FROM unanswered ORDER BY id"
            ).fetchall()
        return [Unanswered(r[0], r[1], r[2].split(), r[3]) for r in rows]

    def purge_expired(self) -> int:
        """Delete stored questions older than the retention period; returns how many went."""
        cutoff = self._now() - self.retention_seconds
        with self._lock, self._transaction():
            gone = self._db.execute("DELETE FROM unanswered WHERE created_at < ?", (cutoff,)).rowcount
            gone += self._db.execute(
                "UPDATE feedback SET question = NULL WHERE created_at < ? AND question IS NOT NULL", (cutoff,)
            ).rowcount
        return int(gone)

    def close(self) -> None:
        with self._lock:
            self._db.close()


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
