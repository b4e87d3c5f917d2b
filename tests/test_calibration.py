from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from qa_service.answering.calibration import (
    FEATURES,
    ConfidenceModel,
    examples_from_features,
    fit_confidence,
    fit_logistic,
    offtopic_statistics,
    reference_questions,
)


@dataclass(frozen=True)
class Scored:
    score: float
    dense_question: float
    dense_qa: float
    keyword: float
    known: float = 1.0


def test_reference_questions_ship_with_the_package() -> None:
    questions = reference_questions()
    assert len(questions) == 200 and len(set(questions)) == 200


def test_offtopic_statistics() -> None:
    stats = offtopic_statistics([Scored(0.1, 0.2, 0.3, 0.0), Scored(0.2, 0.3, 0.4, 0.0), Scored(0.3, 0.4, 0.5, 0.0)])
    assert stats["offtopic_mean"] == 0.2 and stats["offtopic_max"] == 0.3
    assert stats["question_mean"] == 0.3 and stats["qa_mean"] == 0.4
    assert abs(stats["offtopic_std"] - 0.08165) < 1e-4


MODEL = ConfidenceModel.for_index(
    {
        "offtopic_mean": 0.2,
        "offtopic_std": 0.05,
        "question_mean": 0.2,
        "question_std": 0.05,
        "qa_mean": 0.2,
        "qa_std": 0.05,
    }
)


def test_confidence_rises_with_closeness_coverage_and_lead() -> None:
    far, near = Scored(0.2, 0.2, 0.2, 0.0), Scored(0.6, 0.6, 0.6, 0.0)
    assert MODEL.confidence(far, None) < 0.5 < MODEL.confidence(near, None)
    assert MODEL.confidence(near, 0.59) < MODEL.confidence(near, 0.4) <= MODEL.confidence(near, None)
    assert MODEL.confidence(Scored(0.4, 0.4, 0.4, 0.0), None) < MODEL.confidence(Scored(0.4, 0.4, 0.4, 0.8), None)
    # a question whose words the FAQ never uses is less likely answered by it
    assert MODEL.confidence(Scored(0.5, 0.5, 0.5, 0.3, known=0.3), None) < MODEL.confidence(
        Scored(0.5, 0.5, 0.5, 0.3), None
    )
    assert MODEL.margin(0.6, 0.5) == pytest.approx(2.0)
    assert MODEL.features(near, None) == pytest.approx([8.0, 8.0, 0.0, 3.0, 1.0])  # lead capped at 3
    assert len(FEATURES) == 5


def test_fit_logistic_recovers_a_known_model() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4000, 2))
    logits = -1.0 + 2.0 * features[:, 0] - 0.5 * features[:, 1]
    labels = (rng.random(4000) < 1 / (1 + np.exp(-logits))).astype(float)
    beta = fit_logistic(features, labels, np.ones(4000))
    assert np.allclose(beta, [-1.0, 2.0, -0.5], atol=0.15)


def test_examples_use_the_index_statistics_else_the_reference_rows() -> None:
    def row(kind: str, score: float, correct: bool = False, calibration: object = None) -> dict[str, object]:
        candidate = {
            "id": "x",
            "duplicates": [],
            "score": score,
            "dense_question": score,
            "dense_qa": score,
            "keyword": 0.5,
            "known": 0.75,
        }
        return {"kind": kind, "correct": correct, "rival": None, "calibration": calibration, "candidates": [candidate]}

    rows = [row("reference", 0.1), row("reference", 0.3), row("answerable", 0.8, True), row("noanswer", 0.25)]
    examples = examples_from_features("toy", rows)
    assert [e.kind for e in examples] == ["answerable", "noanswer"]
    assert examples[0].correct and not examples[1].correct
    assert examples[0].features == pytest.approx([6.0, 6.0, 0.5, 3.0, 0.75])  # (0.8 - 0.2) / 0.1 off-topic spread
    assert len(fit_confidence(examples)) == 1 + len(FEATURES)
    # with the manifest's statistics recorded (what the service uses), those win
    stats = {"offtopic_std": 0.1, "question_mean": 0.4, "question_std": 0.2, "qa_mean": 0.4, "qa_std": 0.2}
    [example] = examples_from_features("toy", [row("reference", 0.1), row("answerable", 0.8, True, stats)])
    assert example.features == pytest.approx([2.0, 2.0, 0.5, 3.0, 0.75])
