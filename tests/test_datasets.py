"""Evaluation on the public dev datasets in ../shared/datasets (runs in CI; skips in a bare clone)."""

from __future__ import annotations

import json

import pytest

from qa_service.cli import main
from qa_service.tooling.evaluation import METRIC_KEYS
from tests.conftest import shared_dataset

pytestmark = [pytest.mark.model, pytest.mark.datasets]


def test_eval_on_jhu_covid_faq_prints_the_metric_keys(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_dataset("jhu_covid_faq")
    code = main(["eval", "--faq", str(folder / "faq.jsonl"), "--queries", str(folder / "queries.dev.jsonl"), "--json"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert list(metrics) == list(METRIC_KEYS)
    # the naive MiniLM yardstick in ../shared/MODELS.md is 0.62-0.67 P@1; never fall below it
    assert metrics["p_at_1"] >= 0.62
    assert metrics["mrr_at_10"] >= 0.75
