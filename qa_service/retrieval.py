"""Ranking entries for a question: dense candidates and keyword candidates, rescored exactly and fused.

An entry's score is ``question_weight * max(question, alternates) + (1 - question_weight) * (question
+ answer)`` over cosine similarities, plus ``keyword_weight`` times its keyword (BM25) score scaled to
0..1. A question of several sentences (a long patient message) is also scored sentence by sentence:
its final score is ``(full + sentence_weight * best sentence) / (1 + sentence_weight)``, so one
sentence that asks exactly what an entry answers counts even when the rest of the message is context.
Pure numpy over a loaded index; no HTTP, no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qa_service.arrays import ragged_positions
from qa_service.index import FIELD_NAMES, FaqIndex

QUESTION_FIELDS = (FIELD_NAMES.index("question"), FIELD_NAMES.index("alternate"))
QA_FIELD = FIELD_NAMES.index("qa")


@dataclass(frozen=True)
class RankingWeights:
    question_weight: float = 0.7
    keyword_weight: float = 0.2
    candidates: int = 50  # entries rescored exactly per source (dense, keyword)
    sentence_weight: float = 0.3  # weight of the best single sentence of a multi-sentence question


@dataclass(frozen=True)
class Scored:
    """One entry's scores for one question."""

    entry: int
    score: float  # the fused score the ranking uses
    dense_question: float
    dense_qa: float
    keyword: float


class Retriever:
    def __init__(self, index: FaqIndex, weights: RankingWeights) -> None:
        self.index = index
        self.weights = weights
        rows_entry = index.row_entry
        rows_field = index.row_field
        count = len(index.entries)
        # Rows per entry, split into question-like rows and the (first) question+answer row.
        question_rows = np.flatnonzero(np.isin(rows_field, QUESTION_FIELDS))
        question_rows = question_rows[np.argsort(rows_entry[question_rows], kind="stable")]
        # an entry's question-like rows are _question_rows[_question_start[e] : + _question_count[e]]
        self._question_rows = question_rows.astype(np.int64)
        self._question_count = np.bincount(rows_entry[question_rows], minlength=count).astype(np.int64)
        self._question_start = np.cumsum(self._question_count) - self._question_count
        self._qa_row = np.full(count, -1, dtype=np.int64)
        qa_rows = np.flatnonzero(rows_field == QA_FIELD)[::-1]  # reversed: the first row of an entry wins
        self._qa_row[rows_entry[qa_rows]] = qa_rows

    def rank(
        self,
        query_vectors: npt.NDArray[np.float32],
        questions: Sequence[str],
        k: int,
        sentences: Sequence[Sequence[tuple[str, npt.NDArray[np.float32]]]] | None = None,
    ) -> list[list[Scored]]:
        """The ``k`` best entries per question, best first.

        ``sentences[i]`` holds (text, vector) of each sentence of question i when it has several."""
        limit = self.weights.candidates
        dense = self.index.candidate_entries(query_vectors, k=limit)
        results = []
        for number, (vector, question, found) in enumerate(zip(query_vectors, questions, dense, strict=True)):
            candidates = set(found.tolist())
            keyword_scores = self._keyword_candidates(question, candidates)
            parts = list(sentences[number]) if sentences is not None and self.weights.sentence_weight > 0 else []
            part_found = self.index.candidate_entries(np.vstack([v for _, v in parts]), k=limit) if parts else []
            part_keywords = []
            for (text, _), part_entries in zip(parts, part_found, strict=True):
                candidates.update(part_entries.tolist())
                part_keywords.append(self._keyword_candidates(text, candidates))
            entries = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
            dense_question, dense_qa, keyword, score = self._scores(entries, vector, keyword_scores)
            if parts:
                weight = self.weights.sentence_weight
                best_part = np.max(
                    [
                        self._scores(entries, part_vector, part_scores)[3]
                        for (_, part_vector), part_scores in zip(parts, part_keywords, strict=True)
                    ],
                    axis=0,
                )
                score = (score + weight * best_part) / (1 + weight)
            best = np.lexsort((entries, -score))[:k]  # by score, then entry: ties are deterministic
            results.append(
                [
                    Scored(
                        int(entries[i]),
                        float(score[i]),
                        float(dense_question[i]),
                        float(dense_qa[i]),
                        float(keyword[i]),
                    )
                    for i in best.tolist()
                ]
            )
        return results

    def _keyword_candidates(self, text: str, candidates: set[int]) -> npt.NDArray[np.float32] | None:
        """The text's keyword scores (None when keywords are off); adds its best entries to ``candidates``."""
        keywords = self.index.keywords
        if keywords is None or self.weights.keyword_weight <= 0:
            return None
        scores = keywords.scores(text)
        if scores.any():
            top = min(self.weights.candidates, len(scores))
            best = np.argpartition(-scores, top - 1)[:top]
            candidates.update(best[scores[best] > 0].tolist())
        return scores

    def _scores(
        self,
        entries: npt.NDArray[np.int64],
        vector: npt.NDArray[np.float32],
        keyword_scores: npt.NDArray[np.float32] | None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per entry: best question-like cosine, question+answer cosine (the former when the entry has
        no answer), keyword score, and the fused score."""
        vectors = self.index.vectors
        counts = self._question_count[entries]
        rows = self._question_rows[ragged_positions(self._question_start[entries], counts)]
        similarities = vectors[rows] @ vector
        dense_question = np.zeros(len(entries), dtype=np.float64)
        present = counts > 0
        if present.any():
            offsets = (np.cumsum(counts) - counts)[present]
            dense_question[present] = np.maximum.reduceat(similarities, offsets)
        qa_rows = self._qa_row[entries]
        dense_qa = dense_question.copy()
        has_qa = qa_rows >= 0
        dense_qa[has_qa] = vectors[qa_rows[has_qa]] @ vector
        keyword = keyword_scores[entries].astype(np.float64) if keyword_scores is not None else np.zeros(len(entries))
        weights = self.weights
        score = (
            weights.question_weight * dense_question
            + (1 - weights.question_weight) * dense_qa
            + weights.keyword_weight * keyword
        )
        return dense_question, dense_qa, keyword, score
