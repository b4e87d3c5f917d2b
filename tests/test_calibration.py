from __future__ import annotations

import numpy as np

from qa_service.calibration import ConfidenceModel, fit_logistic, offtopic_statistics, reference_questions


def test_reference_questions_ship_with_the_package() -> None:
    questions = reference_questions()
    assert len(questions) == 200 and len(set(questions)) == 200


def test_offtopic_statistics() -> None:
    stats = offtopic_statistics([0.1, 0.2, 0.3])
    assert stats["offtopic_mean"] == 0.2 and stats["offtopic_max"] == 0.3
    assert abs(stats["offtopic_std"] - 0.08165) < 1e-4


def test_confidence_rises_with_score_and_lead() -> None:
    model = ConfidenceModel(offtopic_mean=0.2, offtopic_std=0.05)
    assert model.confidence(0.2, None) < 0.5 < model.confidence(0.6, None)
    assert model.confidence(0.6, 0.59) < model.confidence(0.6, 0.4) <= model.confidence(0.6, None)
    assert abs(model.margin(0.6, 0.5) - 2.0) < 1e-9


def test_fit_logistic_recovers_a_known_model() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4000, 2))
    logits = -1.0 + 2.0 * features[:, 0] - 0.5 * features[:, 1]
    labels = (rng.random(4000) < 1 / (1 + np.exp(-logits))).astype(float)
    beta = fit_logistic(features, labels, np.ones(4000))
    assert np.allclose(beta, [-1.0, 2.0, -0.5], atol=0.15)
