"""End to end on one machine: two replicas (real ``qa-service serve`` processes, with the fake
embedder) on one index folder, nginx round robin in front (started by the test, no root needed).

Needs nginx (``apt-get install nginx``; another binary with NGINX_PATH): without it these tests skip,
except under CI where they fail (bash .ci/run installs it). The feedback database is a fixture the
replicas share (``feedback_database``): a SQLite file, and a PostgreSQL database on a throwaway server.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from qa_service.build.pipeline import build_index
from qa_service.cli import main
from qa_service.index.store import current_build_id
from qa_service.ops.storage import open_feedback_store
from qa_service.settings import Settings
from qa_service.tooling.loadgen import Run, drive
from qa_service.tooling.replicas import ReplicaSet, failures_after, nginx_binary, replica_set
from tests.conftest import ROOT, skip_outside_ci, use_embedder
from tests.fakes import HashingEmbedder
from tests.test_reload import QUESTION, edit_answer

POLL_SECONDS = 0.5
# A replica serving with the fake embedder, with `qa-service serve`'s options; settings from QA_*.
SERVE_FAKE = (
    sys.executable,
    "-c",
    "import uvicorn\n"
    "from qa_service.api.app import create_app\n"
    "from qa_service.cli import uvicorn_options\n"
    "from qa_service.settings import Settings\n"
    "from tests.fakes import HashingEmbedder\n"
    "settings = Settings()\n"
    "uvicorn.run(create_app(settings, embedder=HashingEmbedder()), **uvicorn_options(settings))\n",
)
QUESTIONS = [QUESTION, "Should I use heat or ice?", "recipe for banana bread", "how do I book an appointment"]


@pytest.fixture
def nginx() -> str:
    """nginx's path; skips on a developer machine without it, fails in CI, which must run these."""
    binary = nginx_binary()
    if binary is None:
        skip_outside_ci(
            "nginx is not installed; the replica tests need it (apt-get install nginx)",
            "nginx is missing: CI runs the replica tests (bash .ci/run installs it)",
        )
    return binary


@dataclass
class FeedbackDatabase:
    """The database every replica writes feedback to: its QA_* settings and a count of the votes."""

    env: dict[str, str]
    votes: Callable[[], int]


@pytest.fixture
def feedback_database(feedback_db: Path | str) -> FeedbackDatabase:
    """The replicas' shared feedback store: a SQLite file, and a PostgreSQL database (conftest's
    ``feedback_db``: a throwaway server, as every storage test uses)."""

    def votes() -> int:
        store = open_feedback_store(feedback_db, retention_days=Settings().retention_days)
        try:
            return len(store.feedback())
        finally:
            store.close()

    return FeedbackDatabase({"QA_FEEDBACK_DB": str(feedback_db)}, votes)


@pytest.fixture
def replicas(nginx: str, built_settings: Settings, feedback_database: FeedbackDatabase) -> Iterator[ReplicaSet]:
    env = {
        "QA_INDEX_DIR": str(built_settings.index_dir),
        "QA_CORPUS_DIR": str(built_settings.corpus_dir),
        "QA_MODEL": built_settings.model,
        "QA_ANSWER_THRESHOLD": str(built_settings.answer_threshold),
        "QA_CLARIFY_MARGIN": str(built_settings.clarify_margin),
        "QA_RELOAD_POLL_SECONDS": str(POLL_SECONDS),
        "PYTHONPATH": str(ROOT),
        **feedback_database.env,
    }
    with replica_set(2, env, command=SERVE_FAKE) as running:
        yield running


def publish(settings: Settings, text: str) -> tuple[str, float]:
    """Publish a build whose spasm-duration answer is ``text``: its id, and when CURRENT named it."""
    edit_answer(settings, text)
    build_index(settings, HashingEmbedder())
    return current_build_id(settings.index_dir), time.monotonic()


def load_in_background(url: str, total: int, concurrency: int) -> tuple[threading.Thread, list[Run]]:
    runs: list[Run] = []
    thread = threading.Thread(target=lambda: runs.append(asyncio.run(drive(url, QUESTIONS, total, concurrency))))
    thread.start()
    return thread, runs


def test_a_build_published_under_load_reaches_both_replicas_without_a_failed_request(
    replicas: ReplicaSet, built_settings: Settings
) -> None:
    assert replicas.nginx is not None
    url = replicas.nginx.base_url
    old = current_build_id(built_settings.index_dir)
    assert replicas.served_builds() == [old, old]

    thread, runs = load_in_background(url, total=4000, concurrency=16)
    time.sleep(1.0)
    new, published_at = publish(built_settings, "Served by every replica after the rollout.")
    switched = [False, False]
    while not all(switched) and time.monotonic() - published_at < POLL_SECONDS + 5:
        switched = [build == new for build in replicas.served_builds()]
    switch_seconds = time.monotonic() - published_at
    thread.join()

    run = runs[0]
    assert run.failures == 0 and len(run.latencies) == 4000
    assert all(switched), replicas.served_builds()
    # within the poll interval, plus the load of the build (milliseconds with the fake model) and the
    # delay of a loaded two-core machine
    assert switch_seconds < POLL_SECONDS + 2.0
    with httpx.Client(base_url=url) as client:
        answers = {client.post("/v1/ask", json={"question": QUESTION}).json()["answer"]["answer"] for _ in range(6)}
        assert answers == {"Served by every replica after the rollout."}
        ready = [replicas.readiness(number) for number in range(2)]
        assert all(body["index"]["build_id"] == body["published_build"] == new for body in ready)


def test_feedback_through_either_replica_lands_in_the_shared_database(
    replicas: ReplicaSet, feedback_database: FeedbackDatabase, built_settings: Settings, tmp_path: Path
) -> None:
    assert replicas.nginx is not None
    with httpx.Client(base_url=replicas.nginx.base_url) as client:
        for number in range(4):  # round robin: two on each replica, one of them "not helpful"
            vote = {"answer_id": "spasm-duration", "helpful": number % 2 == 0}
            assert client.post("/v1/feedback", json=vote).status_code == 201
    assert feedback_database.votes() == 4
    # and the clinic's review reads them from the same database
    out = tmp_path / "review.md"
    env = {"QA_FEEDBACK_DB": feedback_database.env["QA_FEEDBACK_DB"], "QA_MODEL": built_settings.model}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        use_embedder(patch, HashingEmbedder())
        assert main(["review", "--index-dir", str(built_settings.index_dir), "--out", str(out)]) == 0
    review = out.read_text()
    assert "Answers voted not helpful (1)" in review and "spasm-duration" in review


def test_killing_a_replica_fails_only_the_requests_in_flight_on_it(
    replicas: ReplicaSet, built_settings: Settings
) -> None:
    assert replicas.nginx is not None
    thread, runs = load_in_background(replicas.nginx.base_url, total=3000, concurrency=16)
    time.sleep(1.0)
    killed_at = time.perf_counter()
    replicas.kill(0)
    thread.join()
    assert failures_after(runs[0], killed_at) == 0  # nginx sends everything later to the other
    assert runs[0].failures <= 16  # at most the requests in flight
    replicas.start_replica(0)
    assert replicas.served_builds() == [current_build_id(built_settings.index_dir)] * 2
