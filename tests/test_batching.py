"""Micro-batching and the answer cache: concurrent questions share encoder calls and get the same
replies as when asked alone; repeated questions are served from a cache that never outlives its build."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from qa_service.answering.answerer import Answerer
from qa_service.answering.batching import AnswerCache, MicroBatcher
from qa_service.answering.decision import Decision
from qa_service.answering.engine import load_engine
from qa_service.api.app import create_app
from qa_service.index.store import search_threads
from qa_service.model.embedder import Vectors
from qa_service.settings import Settings
from tests.fakes import HashingEmbedder

QUESTIONS = [
    "How long do back spasms last?",
    "should i put ice or heat on it",
    "is walking good for my back",
    "does massage help back spasms",
    "what are your opening hours",
    "how do I prevent upper back spasms",
    "I have crushing chest pain",  # red flag: urgent, never batched with the FAQ lookup
    "¿Cuánto dura un espasmo de espalda?",  # another language
]


class GatedEmbedder(HashingEmbedder):
    """Blocks its first encode call until released, so that later questions queue up meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = True
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> Vectors:
        self.batches.append(len(texts))
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.release.wait(10), "test did not release the encoder"
        return super().encode(texts, batch_size=batch_size, on_batch=on_batch)


@contextmanager
def busy(answerer: Answerer, gated: GatedEmbedder, top_k: int = 3) -> Iterator[tuple[MicroBatcher, Future[Decision]]]:
    """A batcher whose encoder is busy with a first question: what is submitted now queues up, and
    is answered together once the block ends (the encoder is released, the batcher closed)."""
    batcher = MicroBatcher(window=0.0)
    try:
        first = batcher.submit(answerer, "is walking good for back spasms", top_k)
        assert gated.entered.wait(5)
        yield batcher, first
    finally:
        gated.release.set()
        batcher.close()


@pytest.fixture
def answerer(built_settings: Settings) -> Answerer:
    return load_engine(built_settings, HashingEmbedder()).answerer


def summary(decision: Decision) -> tuple[object, ...]:
    return (
        decision.status,
        decision.answer.entry.id if decision.answer else None,
        decision.answer.confidence if decision.answer else None,
        tuple(c.entry.id for c in decision.alternatives),
        decision.message,
        decision.note,
    )


def test_questions_waiting_together_are_answered_in_one_encoder_call_with_the_same_replies(
    built_settings: Settings,
) -> None:
    gated = GatedEmbedder()
    gated.armed = False
    answerer = load_engine(built_settings, gated).answerer
    alone = [summary(answerer.ask(question, 3)) for question in QUESTIONS]
    gated.batches.clear()
    gated.armed = True
    sizes: list[int] = []
    batcher = MicroBatcher(max_batch=32, window=0.0, on_batch=sizes.append)
    try:
        first = batcher.submit(answerer, "is walking good for back spasms", 3)
        assert gated.entered.wait(5)
        waiting = [batcher.submit(answerer, question, 3) for question in QUESTIONS]
        gated.release.set()
        assert summary(first.result(5))[1] == "walking"
        together = [summary(future.result(5)) for future in waiting]
    finally:
        batcher.close()
    assert together == alone
    assert sizes == [1, len(QUESTIONS)]  # the lone first question, then everything that queued behind it
    assert len(gated.batches) == 2  # two encoder calls for nine questions


def test_a_lone_question_does_not_wait_for_the_window(answerer: Answerer) -> None:
    batcher = MicroBatcher(window=30.0)  # a window this long would time the result out below
    try:
        decision = batcher.submit(answerer, "How long do back spasms last?", 3).result(timeout=5)
    finally:
        batcher.close()
    assert decision.status == "answered" and decision.answer is not None
    assert decision.answer.entry.id == "spasm-duration"


def test_each_question_in_a_batch_keeps_its_own_top_k(built_settings: Settings) -> None:
    gated = GatedEmbedder()
    answerer = load_engine(built_settings, gated).answerer
    with busy(answerer, gated) as (batcher, _):
        one = batcher.submit(answerer, "back spasms", 1)
        many = batcher.submit(answerer, "back spasms", 5)
    assert summary(many.result(5)) == summary(answerer.ask("back spasms", 5))
    assert summary(one.result(5)) == summary(answerer.ask("back spasms", 1))


def test_a_question_that_fails_does_not_fail_the_rest_of_its_batch(
    built_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    gated = GatedEmbedder()
    answerer = load_engine(built_settings, gated).answerer
    original = answerer.answer_cleaned

    def fragile(
        questions: Sequence[str], top_k: int | Sequence[int] = 3, contexts: Sequence[object] | None = None
    ) -> list[Decision]:
        if any("poison" in question for question in questions):
            raise RuntimeError("cannot answer poison")
        return original(questions, top_k, contexts)  # type: ignore[arg-type]

    monkeypatch.setattr(answerer, "answer_cleaned", fragile)
    with busy(answerer, gated) as (batcher, first):
        good = batcher.submit(answerer, "How long do back spasms last?", 3)
        bad = batcher.submit(answerer, "poison question", 3)
        also_good = batcher.submit(answerer, "Is massage good for back spasms?", 3)
    assert first.result(5).status == "answered"
    assert also_good.result(5).status == "answered"
    with pytest.raises(RuntimeError, match="poison"):
        bad.result(5)
    answered = good.result(5)
    assert answered.answer is not None and answered.answer.entry.id == "spasm-duration"


def test_abandoned_requests_are_skipped(built_settings: Settings) -> None:
    gated = GatedEmbedder()
    answerer = load_engine(built_settings, gated).answerer
    with busy(answerer, gated) as (batcher, _):
        gone = batcher.submit(answerer, "does massage help", 3)
        kept = batcher.submit(answerer, "How long do back spasms last?", 3)
        assert gone.cancel()  # the client went away before its turn
    assert kept.result(5).status == "answered"
    assert gated.batches[-1] == 1  # only the question still wanted was encoded


def test_closing_answers_what_is_queued_then_refuses_more(answerer: Answerer) -> None:
    batcher = MicroBatcher()
    pending = [batcher.submit(answerer, question, 3) for question in QUESTIONS[:4]]
    batcher.close()
    assert all(future.result(0).status in ("answered", "clarify", "no_answer") for future in pending)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(answerer, "hello", 3)


def test_cache_is_a_bounded_lru() -> None:
    cache = AnswerCache(2)
    decisions = {name: Decision("no_answer", name) for name in "abc"}
    cache.put("a", decisions["a"])
    cache.put("b", decisions["b"])
    assert cache.get("a") is decisions["a"]  # a is now the most recent
    cache.put("c", decisions["c"])  # evicts b, the least recently used
    assert cache.get("b") is None
    assert cache.get("a") is decisions["a"] and cache.get("c") is decisions["c"]
    assert len(cache) == 2 and (cache.hits, cache.misses) == (3, 1)
    off = AnswerCache(0)
    off.put("a", decisions["a"])
    assert off.get("a") is None and len(off) == 0


def test_repeated_questions_come_from_the_cache(client: TestClient) -> None:
    first = client.post("/v1/ask", json={"question": "How long do back spasms last?"})
    again = client.post("/v1/ask", json={"question": "  How long do\u200b back spasms   last?"})  # same, normalised
    other_k = client.post("/v1/ask", json={"question": "How long do back spasms last?", "top_k": 1})
    assert first.json() == again.json()
    assert other_k.json()["answer"] == first.json()["answer"]
    metrics = client.get("/metrics").text
    assert 'qa_answer_cache_total{result="hit"} 1.0' in metrics  # top_k 1 is a different entry
    assert 'qa_answer_cache_total{result="miss"} 2.0' in metrics
    assert "server-timing" in first.headers and first.headers["server-timing"].startswith("app;dur=")


def test_cache_can_be_turned_off(built_settings: Settings, client_for: Callable[[Settings], TestClient]) -> None:
    client = client_for(built_settings.model_copy(update={"cache_size": 0}))
    for _ in range(2):
        assert client.post("/v1/ask", json={"question": "How long do back spasms last?"}).status_code == 200
    assert 'qa_answer_cache_total{result="hit"} 0.0' in client.get("/metrics").text


def test_invalid_questions_are_refused_before_queueing(client: TestClient) -> None:
    response = client.post("/v1/ask", json={"question": "\u200b\u200b"})
    assert response.status_code == 422
    assert "empty" in response.json()["error"]["message"]


def test_concurrent_requests_are_batched_through_the_api(
    built_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(
        built_settings.model_copy(update={"cache_size": 0, "batch_window_ms": 20.0, "rate_limit_per_minute": 0})
    )
    questions = [f"{question} ({number})" for number in range(4) for question in QUESTIONS[:6]]
    with ThreadPoolExecutor(max_workers=12) as pool:
        replies = list(pool.map(lambda q: client.post("/v1/ask", json={"question": q}), questions))
    assert all(reply.status_code == 200 for reply in replies)
    metrics = client.get("/metrics").text
    count = next(line for line in metrics.splitlines() if line.startswith("qa_batch_questions_count"))
    assert float(count.split()[-1]) < len(questions)  # fewer encoder calls than questions


def test_the_batcher_calls_its_after_batch_hook_and_survives_its_failure(answerer: Answerer) -> None:
    done = threading.Event()
    calls: list[int] = []

    def hook() -> None:
        calls.append(1)
        done.set()
        raise RuntimeError("housekeeping broke")

    batcher = MicroBatcher(after_batch=hook)
    try:
        first = batcher.submit(answerer, "how long do back spasms last", 3).result(timeout=30)
        assert done.wait(5)
        second = batcher.submit(answerer, "how long do back spasms last", 3).result(timeout=30)
    finally:
        batcher.close()
    assert first.status == second.status and len(calls) == 2


def test_the_services_batcher_searches_with_one_faiss_thread(built_settings: Settings) -> None:
    """Two OpenMP pools (torch's and faiss's) spinning on two cores slowed batches down: the worker
    searches on one thread and leaves the rest of the process alone."""
    seen: list[tuple[str, int]] = []

    class Recording(HashingEmbedder):
        def encode(
            self, texts: Sequence[str], *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
        ) -> Vectors:
            seen.append((threading.current_thread().name, search_threads()))
            return super().encode(texts, batch_size=batch_size, on_batch=on_batch)

    before = search_threads()
    with TestClient(create_app(built_settings, embedder=Recording())) as client:
        assert client.post("/v1/ask", json={"question": "how long do back spasms last"}).status_code == 200
    assert seen == [("qa-batcher", 1)]
    assert search_threads() == before
