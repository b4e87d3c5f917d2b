"""The feedback store's backends: choosing one from QA_FEEDBACK_DB, the versioned schema and its
migrations, and what happens when the database is unavailable. Each runs on SQLite and PostgreSQL
(the ``feedback_db`` fixture); what both backends store is tested in test_feedback.py."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from qa_service.cli import main
from qa_service.errors import StorageError
from qa_service.ops.migrations import MIGRATIONS, Migration, MigrationResult, latest_version
from qa_service.ops.privacy import scrub
from qa_service.ops.storage import SQLiteFeedbackStore, open_feedback_store
from qa_service.ops.storage_pg import redact
from qa_service.settings import Settings
from qa_service.tooling.bench import free_port
from qa_service.tooling.feedback_check import tag
from tests.conftest import ROOT

EXTRA_TABLE = Migration(
    2,
    "a table for the test",
    sqlite=("CREATE TABLE extra (x INTEGER)",),
    postgresql=("CREATE TABLE extra (x INTEGER)",),
)


def test_a_new_database_gets_the_latest_schema_once(feedback_db: Path | str) -> None:
    with closing(open_feedback_store(feedback_db, retention_days=30)) as store:
        assert store.migration == MigrationResult(0, latest_version(), [m.version for m in MIGRATIONS])
    with closing(open_feedback_store(feedback_db, retention_days=30)) as store:
        assert store.migration == MigrationResult(latest_version(), latest_version(), [])


def test_a_schema_newer_than_the_code_is_refused(feedback_db: Path | str) -> None:
    with closing(open_feedback_store(feedback_db, retention_days=30)) as store:
        assert store.migrate_schema([*MIGRATIONS, EXTRA_TABLE]).applied == [2]
    with pytest.raises(StorageError, match="schema is version 2, newer than this version of qa-service knows"):
        open_feedback_store(feedback_db, retention_days=30)


def test_a_failing_migration_changes_nothing(feedback_db: Path | str) -> None:
    broken = Migration(3, "broken", sqlite=("CREATE TABLE broken (",), postgresql=("CREATE TABLE broken (",))
    with closing(open_feedback_store(feedback_db, retention_days=30)) as store:
        with pytest.raises(StorageError, match="cannot migrate the feedback database"):
            store.migrate_schema([*MIGRATIONS, EXTRA_TABLE, broken])
        # version 2 was rolled back with 3: applying it again creates its table (no IF NOT EXISTS)
        assert store.migrate_schema([*MIGRATIONS, EXTRA_TABLE]) == MigrationResult(1, 2, [2])
        store.add_feedback("heat-or-ice", True, None, None)
        assert len(store.feedback()) == 1


def test_replicas_starting_together_migrate_a_new_database_once(feedback_db: Path | str) -> None:
    starting = threading.Barrier(4)
    results: list[MigrationResult] = []

    def start_replica() -> None:
        starting.wait()
        with closing(open_feedback_store(feedback_db, retention_days=30)) as store:
            results.append(store.migration)

    replicas = [threading.Thread(target=start_replica) for _ in range(4)]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.join()
    assert sorted(len(result.applied) for result in results) == [0, 0, 0, len(MIGRATIONS)]


def test_a_sqlite_database_from_before_versioning_is_adopted_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY, answer_id TEXT NOT NULL, helpful INTEGER NOT NULL, "
            "reason TEXT, question TEXT, created_at REAL NOT NULL)"
        )
        db.execute(
            "CREATE TABLE unanswered (id INTEGER PRIMARY KEY, question TEXT NOT NULL, status TEXT NOT NULL, "
            "candidates TEXT NOT NULL, created_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO feedback VALUES (1, 'heat-or-ice', 0, 'too short', NULL, 4102444800)")
        db.execute("PRAGMA user_version=1")
    with closing(SQLiteFeedbackStore(path, retention_days=30)) as store:
        assert store.migration.applied == [1]
        assert [(row.answer_id, row.helpful, row.reason) for row in store.feedback()] == [
            ("heat-or-ice", False, "too short")
        ]


def test_the_migrate_command_creates_and_then_reports_the_schema(
    feedback_db: Path | str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QA_FEEDBACK_DB", str(feedback_db))
    assert main(["migrate"]) == 0
    assert f"feedback schema migrated from version 0 to {latest_version()}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert f"feedback schema is up to date (version {latest_version()})" in capsys.readouterr().out


def test_the_setting_takes_a_path_or_a_postgresql_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def feedback_db(value: str) -> Path | str:
        return Settings(_env_file=None, feedback_db=value).feedback_db  # type: ignore[call-arg]

    assert feedback_db("data/f.sqlite3") == Path("data/f.sqlite3")
    assert feedback_db("postgresql://qa@db/feedback") == "postgresql://qa@db/feedback"
    assert feedback_db("postgres://qa@db/feedback") == "postgres://qa@db/feedback"
    monkeypatch.setenv("QA_FEEDBACK_DB", "mysql://qa:s3cret@db/feedback")
    assert main(["migrate"]) == 2
    error = capsys.readouterr().err
    assert "QA_FEEDBACK_DB: Value error, mysql:// is not a supported store" in error and "s3cret" not in error


def test_errors_name_a_postgresql_database_without_its_password() -> None:
    assert redact("postgresql://qa:s3cret@db:5432/feedback") == "postgresql://qa:***@db:5432/feedback"
    assert redact("postgresql://qa@db/feedback") == "postgresql://qa@db/feedback"
    with pytest.raises(StorageError) as refused:
        open_feedback_store(f"postgresql://qa:s3cret@127.0.0.1:{free_port()}/feedback", retention_days=30)
    assert "qa:***@127.0.0.1" in refused.value.message and "s3cret" not in refused.value.message
    assert "cannot open the feedback database" in refused.value.message


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_unavailable_store_refuses_feedback_and_answers_go_on(
    backend: str, built_settings: Settings, client_for: Callable[[Settings], TestClient], tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    unavailable = {
        "sqlite": tmp_path / "a-file" / "feedback.sqlite3",
        "postgresql": f"postgresql://qa:pw@127.0.0.1:{free_port()}/x",
    }
    client = client_for(built_settings.model_copy(update={"feedback_db": unavailable[backend]}))
    assert client.post("/v1/ask", json={"question": "How long do back spasms last?"}).status_code == 200
    vote = client.post("/v1/feedback", json={"answer_id": "spasm-duration", "helpful": True})
    assert vote.status_code == 503 and vote.json()["error"]["code"] == "storage_unavailable"


@pytest.mark.postgresql
@pytest.mark.parametrize("feedback_db", ["postgresql"], indirect=True)
def test_a_postgresql_store_outlives_its_connections_being_dropped(feedback_db: str) -> None:
    with closing(open_feedback_store(feedback_db, retention_days=30, pool_size=2)) as store:
        store.add_feedback("heat-or-ice", True, None, None)
        with psycopg.connect(feedback_db, autocommit=True) as admin:  # what a server restart does to them
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        store.add_feedback("heat-or-ice", False, None, None)
        assert [row.helpful for row in store.feedback()] == [True, False]


def test_an_sqlite_store_loads_nothing_of_postgresql(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from qa_service.ops.storage import open_feedback_store; "
        f"open_feedback_store(Path({str(tmp_path / 'f.sqlite3')!r}), retention_days=1).close(); "
        "print(sorted(m for m in sys.modules if m.startswith('psycopg')))"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_durability_check_tags_each_vote_so_the_scrub_keeps_it() -> None:
    tags = [tag(number) for number in range(20_000)]
    assert len(set(tags)) == 20_000 and all(scrub(f"check abc {t}") == f"check abc {t}" for t in tags[::97])
