from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from fastapi.testclient import TestClient
from pytest_postgresql.janitor import DatabaseJanitor

from qa_service.api.app import create_app
from qa_service.build.pipeline import build_index
from qa_service.model.embedder import SentenceTransformerEmbedder
from qa_service.settings import DEFAULT_MODEL, Settings
from qa_service.tooling.pgserver import PostgresServer, temporary_postgres, why_no_postgres
from tests.fakes import HashingEmbedder

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SEED_PAGE = ROOT / "corpus" / "sources" / "treatment-faq.txt"
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come only from what a test passes: no QA_* variables or .env of the developer."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "corpus_dir": tmp_path / "corpus",
        "index_dir": tmp_path / "index",
        "model": HashingEmbedder().name,
        "answer_threshold": 0.5,
        "clarify_margin": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def fake_embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(DATA / "tiny_corpus.yaml", corpus / "tiny.yaml")
    return corpus


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_corpus: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def built_settings(tiny_settings: Settings, fake_embedder: HashingEmbedder) -> Settings:
    build_index(tiny_settings, fake_embedder)
    return tiny_settings


@pytest.fixture
def client(built_settings: Settings, fake_embedder: HashingEmbedder) -> Iterator[TestClient]:
    with TestClient(create_app(built_settings, embedder=fake_embedder)) as test_client:
        yield test_client


@pytest.fixture
def client_for(fake_embedder: HashingEmbedder) -> Iterator[Callable[[Settings], TestClient]]:
    """Open a client on any settings (closed at the end of the test)."""
    opened: list[TestClient] = []

    def open_client(settings: Settings) -> TestClient:
        test_client = TestClient(create_app(settings, embedder=fake_embedder))
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield open_client
    for test_client in opened:
        test_client.__exit__(None, None, None)


# --- the real model (slower: loads torch once per test session) ---------------------------------


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    """The model as the service runs it by default (bfloat16 arithmetic where the CPU has it)."""
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, precision=Settings().encoder_precision)
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder) -> Settings:
    """The bundled corpus (as committed) built with the real model into a temporary index."""
    base = tmp_path_factory.mktemp("seed")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, corpus_dir=ROOT / "corpus", index_dir=base / "index", model=DEFAULT_MODEL
    )
    build_index(settings, real_embedder)
    return settings


def skip_outside_ci(skip_reason: str, ci_failure: str) -> NoReturn:
    """Skip a test whose dependency this machine lacks; fail it in CI (CI=true), which must run it."""
    if os.environ.get("CI"):
        pytest.fail(ci_failure)
    pytest.skip(skip_reason)


def shared_dataset(name: str) -> Path:
    """A dataset folder from ../shared/datasets; skips when absent, except in CI where it must exist."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        skip_outside_ci(
            f"{path} not present (benchmark data lives outside the repo)",
            f"{path} is missing; CI runs beside ../shared",
        )
    return path


# --- feedback stores: every storage test runs on SQLite and on a real PostgreSQL server ----------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway server for the session (qa_service.tooling.pgserver; as root it runs as the
    ``postgres`` user). Skips where PostgreSQL is not installed, except in CI, which installs it."""
    reason = why_no_postgres()
    if reason is not None:
        skip_outside_ci(
            f"PostgreSQL feedback-store tests skipped: {reason}",
            f"{reason}: CI runs the PostgreSQL feedback-store tests (bash .ci/run installs it)",
        )
    with temporary_postgres(fsync=False) as server:  # fsync only matters if the machine itself crashes
        yield server


_database_numbers = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def feedback_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """What QA_FEEDBACK_DB would say: a new SQLite file, or the URL of a new PostgreSQL database
    (dropped after the test)."""
    if request.param == "sqlite":
        yield tmp_path / "data" / "feedback.sqlite3"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"qa_feedback_{os.getpid()}_{next(_database_numbers)}"
    with DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=name):
        yield server.url(name)


def use_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Any) -> None:
    """Every command makes ``embedder`` where it would make one from settings: the factory's module
    and each module that imported it (commands import it from its module when they run)."""
    from qa_service.answering import engine
    from qa_service.api import app
    from qa_service.build import finetune
    from qa_service.model import embedder as factory
    from qa_service.tooling import bench

    for module in (factory, engine, finetune, app, bench):
        monkeypatch.setattr(module, "embedder_from_settings", lambda settings, **_: embedder)
