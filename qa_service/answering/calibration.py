"""Confidence that means something: the probability that an answer is right.

Raw similarities mean different things in different corpora (and after build-time fine-tuning), so
each build measures how high *off-topic* questions score against it: 200 questions no medical FAQ
answers (``data/offtopic_reference.txt``: clinic admin, chit-chat, other trades). A candidate's
scores are then expressed in standard deviations above those off-topic levels, and a logistic model
turns them, the lead over the next different answer, the keyword coverage and the share of the
question's words the corpus uses at all into a probability.

The logistic coefficients are global defaults fitted with ``qa-service calibrate`` on the dev halves
of the public datasets (see docs/benchmarks.md); the per-corpus statistics are measured automatically at
build time and stored in the index manifest (``calibration``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

REFERENCE_FILE = "offtopic_reference.txt"
MARGIN_CAP = 3.0
# The fused score is a weighted sum of the three components, so it is not a feature of its own (the
# model would not be identifiable); it only measures the lead over the rival.
FEATURES = ("question_z", "qa_z", "keyword", "margin", "known")

# Global coefficients, in FEATURES order after the bias; see docs/benchmarks.md for how they were fitted.
DEFAULT_COEFFICIENTS = (-4.379, 0.465, 0.321, 1.008, 0.424, 1.71)
# Used only for an index without measured statistics (never produced by this version's builds).
FALLBACK_STATISTICS = {
    "offtopic_mean": 0.2,
    "offtopic_std": 0.07,
    "question_mean": 0.2,
    "question_std": 0.07,
    "qa_mean": 0.2,
    "qa_std": 0.07,
}


class Similarities(Protocol):
    """What the off-topic statistics read from a ranked entry."""

    @property
    def score(self) -> float: ...
    @property
    def dense_question(self) -> float: ...
    @property
    def dense_qa(self) -> float: ...


class Scores(Similarities, Protocol):
    """What the confidence model reads from a candidate."""

    @property
    def keyword(self) -> float: ...
    @property
    def known(self) -> float: ...


def reference_questions() -> list[str]:
    text = resources.files("qa_service").joinpath("data", REFERENCE_FILE).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _spread(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    if not len(array):
        return 0.0, 1.0
    return round(float(array.mean()), 5), round(max(float(array.std()), 1e-3), 5)


def offtopic_statistics(tops: Sequence[Similarities]) -> dict[str, float]:
    """Levels of the reference questions' best candidates against one corpus."""
    mean, std = _spread([top.score for top in tops])
    question_mean, question_std = _spread([top.dense_question for top in tops])
    qa_mean, qa_std = _spread([top.dense_qa for top in tops])
    scores = [top.score for top in tops] or [0.0]
    return {
        "offtopic_mean": mean,
        "offtopic_std": std,
        "offtopic_p95": round(float(np.quantile(scores, 0.95)), 5),
        "offtopic_max": round(float(max(scores)), 5),
        "question_mean": question_mean,
        "question_std": question_std,
        "qa_mean": qa_mean,
        "qa_std": qa_std,
    }


@dataclass(frozen=True)
class ConfidenceModel:
    """P(candidate right) = sigmoid(bias + coefficients . features(candidate, rival))."""

    statistics: dict[str, float]
    coefficients: tuple[float, ...] = DEFAULT_COEFFICIENTS

    @classmethod
    def for_index(cls, statistics: dict[str, float] | None) -> ConfidenceModel:
        merged = dict(FALLBACK_STATISTICS)
        merged.update(statistics or {})
        return cls(merged)

    def margin(self, best: float, other: float) -> float:
        """How far ``best`` leads ``other``, in off-topic standard deviations."""
        return (best - other) / self.statistics["offtopic_std"]

    def features(self, candidate: Scores, rival: float | None) -> list[float]:
        """FEATURES of a candidate whose best different rival scores ``rival`` (None: no rival)."""
        stats = self.statistics
        margin = MARGIN_CAP if rival is None else min(self.margin(candidate.score, rival), MARGIN_CAP)
        return [
            (candidate.dense_question - stats["question_mean"]) / stats["question_std"],
            (candidate.dense_qa - stats["qa_mean"]) / stats["qa_std"],
            candidate.keyword,
            margin,
            candidate.known,
        ]

    def confidence(self, candidate: Scores, rival: float | None) -> float:
        return probability(self.coefficients, self.features(candidate, rival))


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
class _Row:
    score: float
    dense_question: float
    dense_qa: float
    keyword: float
    known: float


@dataclass(frozen=True)
class CalibrationExample:
    dataset: str
    kind: str  # answerable / noanswer
    features: list[float]
    correct: bool  # the top entry is right (always False for a question the FAQ does not answer)


_CANDIDATE_NUMBERS = ("score", "dense_question", "dense_qa", "keyword")


def feature_row_problem(row: dict[str, Any]) -> str | None:
    """What makes ``row`` unusable as an ``eval --features`` row, or None."""
    if row.get("kind") not in ("answerable", "noanswer", "reference"):
        return "'kind' must be answerable, noanswer or reference"
    candidates = row.get("candidates")
    if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
        return "'candidates' must be a list of objects"
    for candidate in candidates:
        missing = [
            name
            for name in _CANDIDATE_NUMBERS
            if not isinstance(candidate.get(name), int | float) or isinstance(candidate.get(name), bool)
        ]
        if missing:
            return f"a candidate lacks the number(s) {', '.join(missing)}"
    if not isinstance(row.get("correct", False), bool) or not isinstance(row.get("rival"), int | float | None):
        return "'correct' must be true or false and 'rival' a number or null"
    return None


def examples_from_features(dataset: str, rows: Sequence[dict[str, Any]]) -> list[CalibrationExample]:
    """Turn `qa-service eval --features` rows into examples for the confidence model.

    The off-topic levels are the statistics recorded with each row (the index manifest's, exactly
    what the service uses); rows without them fall back to the file's reference rows."""

    def top_of(row: dict[str, Any]) -> _Row:
        best = row["candidates"][0]
        return _Row(best["score"], best["dense_question"], best["dense_qa"], best["keyword"], best.get("known", 1.0))

    references = [top_of(row) for row in rows if row.get("kind") == "reference" and row.get("candidates")]
    measured = offtopic_statistics(references) if references else None
    examples = []
    for row in rows:
        candidates = row.get("candidates") or []
        if row.get("kind") not in ("answerable", "noanswer") or not candidates:
            continue
        model = ConfidenceModel.for_index(row.get("calibration") or measured)
        top = top_of(row)
        correct = bool(row["correct"]) and row["kind"] == "answerable"
        examples.append(CalibrationExample(dataset, row["kind"], model.features(top, row.get("rival")), correct))
    return examples


def fit_confidence(examples: Sequence[CalibrationExample]) -> tuple[float, ...]:
    """(bias, *weights in FEATURES order); every dataset weighs the same in the fit."""
    datasets = sorted({e.dataset for e in examples})
    per_dataset = {name: sum(1 for e in examples if e.dataset == name) for name in datasets}
    features = np.array([e.features for e in examples], dtype=np.float64)
    labels = np.array([1.0 if e.correct else 0.0 for e in examples])
    weights = np.array([len(examples) / (len(datasets) * per_dataset[e.dataset]) for e in examples])
    return tuple(round(float(value), 3) for value in fit_logistic(features, labels, weights))


def probability(coefficients: Sequence[float], features: Sequence[float]) -> float:
    bias, *weights = coefficients
    logit = bias + sum(w * f for w, f in zip(weights, features, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, logit))))


def examples_from_files(paths: Sequence[Path]) -> list[CalibrationExample]:
    """Examples from `qa-service eval --features` files, one dataset per file (named by its stem);
    a row that is not such a row is refused with its file and line."""
    from qa_service.corpus.importers.common import iter_jsonl_objects, read_text
    from qa_service.errors import QaError

    examples = []
    for path in paths:
        rows = []
        for where, row in iter_jsonl_objects(read_text(path), path):
            problem = feature_row_problem(row)
            if problem:
                raise QaError(f"{where}: not a row of `qa-service eval --features`: {problem}")
            rows.append(row)
        examples += examples_from_features(path.stem, rows)
    return examples


def threshold_table(
    coefficients: Sequence[float], examples: Sequence[CalibrationExample], thresholds: Sequence[float]
) -> dict[str, list[tuple[float, float, float | None]]]:
    """Per dataset and threshold: (threshold, share of its answerable questions answered right,
    share of its no-answer questions declined, or None when it has none)."""
    table: dict[str, list[tuple[float, float, float | None]]] = {}
    for dataset in sorted({e.dataset for e in examples}):
        own = [e for e in examples if e.dataset == dataset]
        answerable = sum(1 for e in own if e.kind == "answerable")
        noanswer = sum(1 for e in own if e.kind == "noanswer")
        cells = []
        for threshold in thresholds:
            accepted = [e for e in own if probability(coefficients, e.features) >= threshold]
            right = sum(1 for e in accepted if e.correct) / max(1, answerable)
            declined = 1 - sum(1 for e in accepted if e.kind == "noanswer") / noanswer if noanswer else None
            cells.append((threshold, right, declined))
        table[dataset] = cells
    return table
