"""The harness's HTTP plan: which questions each concurrency level gets, and in which order."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from qa_service.errors import QaError
from qa_service.settings import Settings
from qa_service.tooling import bench
from qa_service.tooling.bench import BenchPlan
from qa_service.tooling.loadgen import Run


def test_every_level_asks_the_same_questions_once_in_alternating_order(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, list[str]]] = []

    async def fake_drive(url: str, questions: list[str], total: int, concurrency: int) -> Run:
        asked = [questions[i % len(questions)] for i in range(total)]
        calls.append((concurrency, asked))
        return Run(latencies=[0.01 * concurrency] * total, server=[0.005] * total, seconds=total / (100 * concurrency))

    monkeypatch.setattr(bench, "drive", fake_drive)
    monkeypatch.setattr(bench, "resident_mb", lambda pid: 100.0)
    server: Any = SimpleNamespace(base_url="http://127.0.0.1:1", process=SimpleNamespace(pid=1))
    plan = BenchPlan(distinct=10, rounds=2, repeated=0, compare_unbatched=False, warmup=2)
    questions = [f"question {i}" for i in range(10)]
    results = bench.measure_levels(server, questions, plan)

    warmup, *measured = calls
    assert warmup == (1, questions[:2])
    # first half at 1, 8, 32; second half at 32, 8, 1: a slow spell of the machine hits every level
    assert [(level, asked) for level, asked in measured] == [
        (1, questions[:5]),
        (8, questions[:5]),
        (32, questions[:5]),
        (32, questions[5:]),
        (8, questions[5:]),
        (1, questions[5:]),
    ]
    for level in plan.levels:
        result = results[level]
        assert result.requests == 10 and result.failures == 0 and result.concurrency == level
        assert result.throughput == pytest.approx(100 * level)  # requests over the summed seconds
        assert result.latency.count == 10 and result.server is not None and result.server.count == 10


def test_the_plan_takes_distinct_shuffled_questions_the_same_way_every_run() -> None:
    questions = [f"q{i}" for i in range(50)] + ["q1", "q2"]  # repeats count once
    plan = BenchPlan(distinct=40, rounds=2, repeated=0, compare_unbatched=False)
    picked = bench.pick_questions(questions, plan)
    assert len(picked) == len(set(picked)) == 40 and picked != questions[:40]
    assert bench.pick_questions(questions, plan) == picked
    assert len(bench.pick_questions(questions[:35], plan)) == 35  # fewer than planned: all of them
    with pytest.raises(QaError, match="at least 32 distinct questions"):
        bench.pick_questions(questions[:20], plan)


def test_the_kept_rebuild_folder_follows_the_build_settings(tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    faq.write_text("")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    same = bench.rebuild_folder(faq, Settings(_env_file=None))  # type: ignore[call-arg]
    assert bench.rebuild_folder(faq, settings) == same  # kept between runs of one configuration
    retrained = settings.model_copy(update={"finetune_learning_rate": 1e-4})
    assert bench.rebuild_folder(faq, retrained) != same  # a new training gets its own first build
    served = settings.model_copy(update={"answer_threshold": 0.9})
    assert bench.rebuild_folder(faq, served) == same  # a serving setting does not make a new build
    assert bench.rebuild_folder(tmp_path / "other.jsonl", settings) != same
