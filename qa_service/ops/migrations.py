"""The feedback database's schema, one for SQLite and PostgreSQL, as an ordered list of migrations.

Each migration has a version and its statements in each dialect (the two differ only where the
databases do: an auto-numbered key, a boolean column). ``migrate`` applies the ones a database has
not had, in order, inside the caller's transaction, and records each in ``schema_version``; a database
whose schema is newer than this code is refused. The stores run it when they open (PostgreSQL under
an advisory lock, so replicas starting together migrate once); ``qa-service migrate`` runs it alone.

Version 1 is the schema SQLite databases already had before versioning (``PRAGMA user_version`` 1):
its statements are ``IF NOT EXISTS``, so such a database is adopted as it is, its rows kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from qa_service.errors import StorageError

Dialect = Literal["sqlite", "postgresql"]

# pg_advisory_xact_lock key held while migrating: the bytes of "qa-feedback" folded into a bigint
ADVISORY_LOCK_KEY = 0x71612D6665656462


class Cursor(Protocol):
    """What the stores and migrations need of a DB-API cursor (sqlite3's and psycopg's both fit)."""

    @property
    def rowcount(self) -> int: ...
    def execute(self, sql: Any, params: Any = ..., /) -> Any: ...
    def executemany(self, sql: Any, params: Any, /) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sqlite: Sequence[str]
    postgresql: Sequence[str]

    def statements(self, dialect: Dialect) -> Sequence[str]:
        return self.sqlite if dialect == "sqlite" else self.postgresql


_INDEXES = (
    "CREATE INDEX IF NOT EXISTS feedback_created ON feedback(created_at)",
    "CREATE INDEX IF NOT EXISTS unanswered_created ON unanswered(created_at)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "feedback votes and unanswered questions, indexed by time for the retention purge",
        sqlite=(
            "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY, answer_id TEXT NOT NULL, "
            "helpful INTEGER NOT NULL, reason TEXT, question TEXT, created_at REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS unanswered (id INTEGER PRIMARY KEY, question TEXT NOT NULL, "
            "status TEXT NOT NULL, candidates TEXT NOT NULL, created_at REAL NOT NULL)",
            *_INDEXES,
        ),
        postgresql=(
            "CREATE TABLE IF NOT EXISTS feedback (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "answer_id TEXT NOT NULL, helpful BOOLEAN NOT NULL, reason TEXT, question TEXT, "
            "created_at DOUBLE PRECISION NOT NULL)",
            "CREATE TABLE IF NOT EXISTS unanswered (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "question TEXT NOT NULL, status TEXT NOT NULL, candidates TEXT NOT NULL, "
            "created_at DOUBLE PRECISION NOT NULL)",
            *_INDEXES,
        ),
    ),
)

_VERSION_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
    "description TEXT NOT NULL, applied_at REAL NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
    "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)",
}


@dataclass(frozen=True)
class MigrationResult:
    before: int  # the schema version the database had (0: none)
    after: int
    applied: list[int]


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return migrations[-1].version if migrations else 0


def migrate(
    cursor: Cursor, dialect: Dialect, *, name: str, migrations: Sequence[Migration] = MIGRATIONS
) -> MigrationResult:
    """Bring the schema up to the last of ``migrations`` in the caller's transaction (all or nothing).

    The caller holds the database's write lock: SQLite's ``BEGIN IMMEDIATE``; PostgreSQL's advisory
    lock, taken here. ``name`` names the database in errors."""
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3, ... in order")
    placeholder = "?" if dialect == "sqlite" else "%s"
    if dialect == "postgresql":
        cursor.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
    cursor.execute(_VERSION_TABLE[dialect])
    cursor.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    before = int(cursor.fetchall()[0][0])
    latest = latest_version(migrations)
    if before > latest:
        raise StorageError(
            f"{name}: the feedback database's schema is version {before}, newer than this version of "
            f"qa-service knows ({latest}); upgrade qa-service"
        )
    applied = []
    for migration in migrations[before:]:
        for statement in migration.statements(dialect):
            cursor.execute(statement)
        cursor.execute(
            "INSERT INTO schema_version (version, description, applied_at) "
            f"VALUES ({placeholder}, {placeholder}, {placeholder})",
            (migration.version, migration.description, time.time()),
        )
        applied.append(migration.version)
    if dialect == "sqlite" and applied:  # what versions before schema_version read, so they refuse it too
        cursor.execute(f"PRAGMA user_version={latest}")
    return MigrationResult(before, max(before, latest), applied)
