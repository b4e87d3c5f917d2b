"""Feedback and the unanswered-question review: privacy, retention, durability, and the review loop."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import NamedTuple, cast

import pytest
from fastapi.testclient import TestClient

from qa_service.build.pipeline import build_index
from qa_service.cli import main
from qa_service.corpus.entries import dump_corpus, load_corpus_file
from qa_service.errors import StorageError
from qa_service.ops.privacy import scrub
from qa_service.ops.storage import (
    DAY,
    Feedback,
    FeedbackStore,
    Unanswered,
    UnansweredRecord,
    UnansweredRecorder,
    open_feedback_store,
)
from qa_service.settings import Settings
from tests.conftest import ROOT, use_embedder
from tests.fakes import HashingEmbedder


class Stored(NamedTuple):
    feedback: list[Feedback]
    unanswered: list[Unanswered]


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("email me at jane.doe+x@mail.co.uk about my back", "about my back", "jane.doe"),
        ("call +44 20 7946 0958 or (555) 123-4567", "call [phone] or [phone]", "7946"),
        ("my DOB is 12/03/1980 and 3rd of March 1980", "my DOB is [date] and [date]", "1980"),
        ("My name is Jane Smith, back spasms since June", "My name is [name], back spasms since June", "Smith"),
        ("insurance number AB1234567", "insurance number [number]", "1234567"),
        ("I take 2 or 3 tablets for 10 20 minutes", "I take 2 or 3 tablets for 10 20 minutes", "[phone]"),
    ],
)
def test_scrub_removes_identifiers_and_keeps_the_question(text: str, kept: str, gone: str) -> None:
    cleaned = scrub(text)
    assert kept in cleaned and gone not in cleaned


@pytest.mark.parametrize(
    ("run", "expected"), [("'1' * 100_000", "[number]"), ("'a1' * 50_000", None), ("'a.' * 50_000", None)]
)
def test_scrub_of_a_long_run_without_identifiers_cannot_stall_a_request(run: str, expected: str | None) -> None:
    # Feedback is scrubbed while the request holds the interpreter: the address pattern used to restart
    # inside every run of address characters, over a minute for 100k characters (quadratic); now
    # linear. `re` never lets go of the interpreter, so the check runs in a process of its own.
    script = f"from qa_service.ops.privacy import scrub; text = {run}; print(scrub(text) == ({expected!r} or text))"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "True", done.stderr


def test_scrub_still_finds_addresses_beside_punctuation() -> None:
    cleaned = scrub("write to (jane.doe@x.org), re.john@mail.co.uk; or a.b@c.de.")
    assert cleaned == "write to ([email]), [email]; or [email]."


def stored(target: Path | str, *, retention_days: float = 30, clock: Callable[[], float] = time.time) -> Stored:
    """What a store holds, read by opening it anew (and closing it)."""
    with closing(open_feedback_store(target, retention_days=retention_days, clock=clock)) as store:
        return Stored(store.feedback(), store.unanswered())


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_store_persists_scrubbed_rows(feedback_db: Path | str) -> None:
    store = open_feedback_store(feedback_db, retention_days=30)
    store.add_feedback("spasm-duration", False, "too vague, call me on 07700 900123", "how long? jane@x.org")
    store.add_unanswered("parking? my number is 555 123 4567", "no_answer", [])
    store.close()
    reopened = stored(feedback_db)
    [feedback] = reopened.feedback
    assert feedback.answer_id == "spasm-duration" and not feedback.helpful
    assert feedback.reason == "too vague, call me on [phone]" and feedback.question == "how long? [email]"
    assert [u.question for u in reopened.unanswered] == ["parking? my number is [phone]"]


def test_stored_questions_expire_after_the_retention_period(feedback_db: Path | str) -> None:
    clock = Clock()
    store = open_feedback_store(feedback_db, retention_days=2, clock=clock)
    store.add_unanswered("old question", "no_answer", [])
    store.add_feedback("spasm-duration", True, None, "old feedback question")
    clock.now += 1 * DAY
    store.add_unanswered("newer question", "clarify", ["a", "b"])
    clock.now += 1.5 * DAY  # the first rows are now 2.5 days old: a write purges them
    store.add_unanswered("newest question", "no_answer", [])
    assert [u.question for u in store.unanswered()] == ["newer question", "newest question"]
    [feedback] = store.feedback()
    assert feedback.question is None and feedback.helpful  # the vote stays, the question text goes
    store.close()
    clock.now += 10 * DAY  # and opening the store purges too
    assert stored(feedback_db, retention_days=2, clock=clock).unanswered == []


WRITER = """
import sys
from pathlib import Path
from qa_service.ops.storage import open_feedback_store
target = sys.argv[1]
store = open_feedback_store(target if "://" in target else Path(target), retention_days=30)
for number in range(1, 100000):
    store.add_feedback(f"entry-{number}", number % 2 == 0, None, None)
    print(number, flush=True)
"""


def test_a_killed_writer_loses_no_committed_feedback(feedback_db: Path | str) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(feedback_db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout is not None
    committed = 0
    for line in writer.stdout:
        committed = int(line)
        if committed >= 200:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    rows = stored(feedback_db).feedback
    assert committed >= 200 and len(rows) >= committed
    assert [row.answer_id for row in rows[:committed]] == [f"entry-{n}" for n in range(1, committed + 1)]


# --- through the API ------------------------------------------------------------------------------------


def test_feedback_endpoint(
    built_settings: Settings, client_for: Callable[[Settings], TestClient], feedback_db: Path | str
) -> None:
    client = client_for(built_settings.model_copy(update={"feedback_db": feedback_db}))
    response = client.post(
        "/v1/feedback", json={"answer_id": "spasm-duration", "helpful": False, "reason": "mail me: a@b.org"}
    )
    assert response.status_code == 201 and response.json() == {"recorded": True}
    [row] = stored(feedback_db).feedback  # committed before the 201
    assert row.answer_id == "spasm-duration" and row.reason == "mail me: [email]"

    missing = client.post("/v1/feedback", json={"answer_id": "nope", "helpful": True})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    for bad in ({"answer_id": "spasm-duration", "helpful": "yes"}, {"answer_id": "spasm-duration"}, {"helpful": True}):
        assert client.post("/v1/feedback", json=bad).status_code == 422


def test_unanswered_questions_are_recorded_only_when_enabled(
    built_settings: Settings,
    client_for: Callable[[Settings], TestClient],
    caplog: pytest.LogCaptureFixture,
    feedback_db: Path | str,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = built_settings.model_copy(update={"feedback_db": feedback_db})
    off = client_for(settings)
    off.post("/v1/ask", json={"question": "banana bread recipe from jane@x.org"})
    on = client_for(settings.model_copy(update={"record_unanswered": True}))
    on.post("/v1/ask", json={"question": "banana bread recipe from jane@x.org"})
    on.post("/v1/ask", json={"question": "How long do back spasms last?"})  # answered: not recorded
    on.app.state.service.recorder.flush()  # type: ignore[attr-defined]  # written after the reply
    rows = stored(feedback_db).unanswered
    assert [(r.question, r.status) for r in rows] == [("banana bread recipe from [email]", "no_answer")]
    assert "banana" not in caplog.text  # logs never carry question text by default


class SlowStore:
    """A store whose first group waits until released, and which counts its transactions."""

    def __init__(self, target: Path | str) -> None:
        self.store = open_feedback_store(target, retention_days=30)
        self.release = threading.Event()
        self.groups: list[int] = []
        self.unanswered = self.store.unanswered

    def add_unanswered_many(self, records: Sequence[UnansweredRecord]) -> None:
        if not self.groups:
            self.release.wait(5)
        self.groups.append(len(records))
        self.store.add_unanswered_many(records)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_the_recorder_commits_what_queued_meanwhile_together_and_in_order(feedback_db: Path | str) -> None:
    store = SlowStore(feedback_db)
    recorder = UnansweredRecorder(cast(FeedbackStore, store))
    for number in range(40):
        recorder.record(f"question {number}", "no_answer", ["a"])
    store.release.set()
    recorder.flush()
    assert [u.question for u in store.unanswered()] == [f"question {n}" for n in range(40)]
    assert sum(store.groups) == 40 and len(store.groups) <= 3  # not one sync per question
    recorder.record("asked last", "clarify", ["a", "b"])
    recorder.close()  # what is queued is written before it stops
    assert store.unanswered()[-1].question == "asked last" and store.unanswered()[-1].candidates == ["a", "b"]
    store.close()


def test_the_recorder_outlives_a_failed_write_and_drops_past_its_limit(
    feedback_db: Path | str, caplog: pytest.LogCaptureFixture
) -> None:
    store = SlowStore(feedback_db)
    store.release.set()
    writing, failed_once = threading.Event(), threading.Event()
    carry_on = threading.Event()
    original = store.add_unanswered_many

    def fails_first(records: Sequence[UnansweredRecord]) -> None:
        writing.set()
        carry_on.wait(5)
        if not failed_once.is_set():
            failed_once.set()
            raise StorageError("disk full")
        original(records)

    store.add_unanswered_many = fails_first  # type: ignore[method-assign]
    recorder = UnansweredRecorder(cast(FeedbackStore, store), limit=3)
    with caplog.at_level(logging.WARNING, logger="qa_service.ops.storage"):
        recorder.record("q0", "no_answer", [])
        assert writing.wait(5)  # the writer holds q0
        for number in range(1, 6):  # q1-q3 wait in the queue, q4 and q5 find it full
            recorder.record(f"q{number}", "no_answer", [])
        carry_on.set()
        recorder.flush()
        recorder.record("after the failure", "no_answer", [])
        recorder.close()
    assert "disk full" in caplog.text and "(2 dropped so far)" in caplog.text
    assert [u.question for u in store.unanswered()] == ["q1", "q2", "q3", "after the failure"]
    store.close()


def test_question_logging_is_opt_in_and_scrubbed(
    built_settings: Settings, client_for: Callable[[Settings], TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = client_for(built_settings.model_copy(update={"log_questions": True}))
    client.post("/v1/ask", json={"question": "banana bread recipe from jane@x.org"})
    assert "banana bread recipe from [email]" in caplog.text and "jane@x.org" not in caplog.text


def test_adding_a_suggested_phrasing_makes_the_question_answerable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], feedback_db: Path | str
) -> None:
    """The review loop: unanswered question -> review suggests an entry -> staff add it -> rebuild -> answered."""
    project = tmp_path / "project"
    (project / "corpus").mkdir(parents=True)
    corpus_file = project / "corpus" / "tiny.yaml"
    corpus_file.write_text((ROOT / "tests" / "data" / "tiny_corpus.yaml").read_text())
    fake = HashingEmbedder()
    use_embedder(monkeypatch, fake)
    for name, value in {
        "QA_MODEL": fake.name,
        "QA_ANSWER_THRESHOLD": "0.5",
        "QA_RECORD_UNANSWERED": "true",
        "QA_FEEDBACK_DB": str(feedback_db),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)
    question = "spasm in my back: how many days until it is gone?"

    settings = Settings()
    build_index(settings, fake)
    from qa_service.api.app import create_app

    with TestClient(create_app(settings, embedder=fake)) as client:
        assert client.post("/v1/ask", json={"question": question}).json()["status"] == "no_answer"
        for helpful, reason in ((False, "too short"), (False, "did not say what to do"), (True, None)):
            vote = {"answer_id": "heat-or-ice", "helpful": helpful, "reason": reason}
            assert client.post("/v1/feedback", json=vote).status_code == 201

    assert main(["review", "--out", "review.md", "--min-confidence", "0"]) == 0  # the fake model is not calibrated
    report = (project / "review.md").read_text()
    assert f"**{question}** - asked 1x (no_answer 1)" in report
    assert "`heat-or-ice` (Should I use heat or ice on a back spasm?): 2 not helpful, 1 helpful" in report
    assert '"did not say what to do"' in report
    suggestion = next(line for line in report.splitlines() if "suggestion: add" in line)
    entry_id = suggestion.split("`")[1]

    corpus = load_corpus_file(corpus_file)  # what staff do by hand: add the phrasing to that entry
    entries = [
        e.model_copy(update={"alternates": [*e.alternates, question]}) if e.id == entry_id else e
        for e in corpus.entries
    ]
    corpus_file.write_text(dump_corpus(entries))
    assert main(["build"]) == 0
    capsys.readouterr()
    assert main(["ask", question, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["status"] == "answered" and body["answer"]["id"] == entry_id
