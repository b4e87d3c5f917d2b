"""Confidence that means something: the probability that the top answer is right.

Raw similarity scores mean different things in different corpora (and after build-time fine-tuning),
so each build measures how high *off-topic* questions score against it: 200 questions no medical FAQ
answers (``data/offtopic_reference.txt``: clinic admin, chit-chat, other trades). A question's top
score is then expressed in units of that spread above the off-topic mean, and a logistic model turns
it and the margin to the next distinct answer into a probability. The logistic coefficients are
global defaults fitted on the dev halves of the public datasets (see BENCHMARKS.md); the per-corpus
statistics are computed automatically at build time and stored in the index manifest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

REFERENCE_FILE = "offtopic_reference.txt"


def reference_questions() -> list[str]:
    text = resources.files("qa_service").joinpath("data", REFERENCE_FILE).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def offtopic_statistics(top_scores: Sequence[float]) -> dict[str, float]:
    """Summary of the reference questions' top scores against one corpus."""
    scores = np.asarray(top_scores, dtype=np.float64)
    if not len(scores):
        return {"offtopic_mean": 0.0, "offtopic_std": 1.0, "offtopic_p95": 0.0, "offtopic_max": 0.0}
    return {
        "offtopic_mean": round(float(scores.mean()), 5),
        "offtopic_std": round(max(float(scores.std()), 1e-3), 5),
        "offtopic_p95": round(float(np.quantile(scores, 0.95)), 5),
        "offtopic_max": round(float(scores.max()), 5),
    }


# Global coefficients of the confidence model, fitted with `qa-service calibrate` on the dev halves
# of the public datasets (see BENCHMARKS.md for the command and the data).
DEFAULT_BIAS = -3.694
DEFAULT_Z_WEIGHT = 0.922
DEFAULT_MARGIN_WEIGHT = 0.908
DEFAULT_KEYWORD_WEIGHT = -0.872
# Used only for an index without measured statistics (never produced by this version's builds).
FALLBACK_STATISTICS = {"offtopic_mean": 0.2, "offtopic_std": 0.07}
MARGIN_CAP = 3.0


def confidence_features(
    best: float, second: float | None, offtopic_mean: float, offtopic_std: float
) -> tuple[float, float]:
    """(z, margin): the top score above the off-topic mean, and its lead over the next different
    answer, both in off-topic standard deviations (the lead capped at 3; no rival counts as 3)."""
    z = (best - offtopic_mean) / offtopic_std
    margin = min((best - second) / offtopic_std, MARGIN_CAP) if second is not None else MARGIN_CAP
    return z, margin


@dataclass(frozen=True)
class ConfidenceModel:
    """P(entry right) = sigmoid(bias + z_weight * z + margin_weight * margin + keyword_weight * keyword)."""

    offtopic_mean: float
    offtopic_std: float
    bias: float = DEFAULT_BIAS
    z_weight: float = DEFAULT_Z_WEIGHT
    margin_weight: float = DEFAULT_MARGIN_WEIGHT
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT

    @classmethod
    def for_index(cls, statistics: dict[str, float] | None) -> ConfidenceModel:
        stats = statistics or FALLBACK_STATISTICS
        return cls(offtopic_mean=stats["offtopic_mean"], offtopic_std=stats["offtopic_std"])

    def margin(self, best: float, other: float) -> float:
        return (best - other) / self.offtopic_std

    def confidence(self, score: float, rival: float | None, keyword: float = 0.0) -> float:
        """Probability that the entry scoring ``score`` (keyword coverage ``keyword``) is right when the
        best different answer scores ``rival`` (None: there is none)."""
        z, margin = confidence_features(score, rival, self.offtopic_mean, self.offtopic_std)
        logit = self.bias + self.z_weight * z + self.margin_weight * margin + self.keyword_weight * keyword
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, logit))))


def fit_logistic(
    features: npt.NDArray[np.float64],
    labels: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    *,
    l2: float = 1e-3,
    iterations: int = 50,
) -> npt.NDArray[np.float64]:
    """Weighted logistic regression by Newton's method; returns [bias, *coefficients]."""
    design = np.hstack([np.ones((len(features), 1)), features])
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -40, 40)))
        gradient = design.T @ (weights * (labels - p)) - l2 * beta
        hessian = design.T @ (design * (weights * p * (1 - p))[:, None]) + l2 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta


@dataclass(frozen=True)
class CalibrationExample:
    dataset: str
    kind: str  # answerable / noanswer
    z: float
    margin: float
    keyword: float
    correct: bool  # the top entry is right (always False for a question the FAQ does not answer)

    def features(self) -> list[float]:
        return [self.z, self.margin, self.keyword]


def examples_from_features(dataset: str, rows: Sequence[dict[str, Any]]) -> list[CalibrationExample]:
    """Turn `qa-service eval --features` rows into examples for the confidence model."""
    examples = []
    for row in rows:
        stats = row.get("calibration") or FALLBACK_STATISTICS
        candidates = row.get("candidates") or []
        if row.get("kind") not in ("answerable", "noanswer") or not candidates:
            continue
        best = candidates[0]
        z, margin = confidence_features(best["score"], row.get("rival"), stats["offtopic_mean"], stats["offtopic_std"])
        correct = bool(row["correct"]) and row["kind"] == "answerable"
        examples.append(CalibrationExample(dataset, row["kind"], z, margin, best["keyword"], correct))
    return examples


def fit_confidence(examples: Sequence[CalibrationExample]) -> tuple[float, float, float, float]:
    """(bias, z_weight, margin_weight, keyword_weight); every dataset weighs the same in the fit."""
    datasets = sorted({e.dataset for e in examples})
    per_dataset = {name: sum(1 for e in examples if e.dataset == name) for name in datasets}
    features = np.array([e.features() for e in examples], dtype=np.float64)
    labels = np.array([1.0 if e.correct else 0.0 for e in examples])
    weights = np.array([len(examples) / (len(datasets) * per_dataset[e.dataset]) for e in examples])
    beta = fit_logistic(features, labels, weights)
    bias, z_weight, margin_weight, keyword_weight = (round(float(value), 3) for value in beta)
    return bias, z_weight, margin_weight, keyword_weight
