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
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

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
        bounds = np.searchsorted(rows_entry[question_rows], np.arange(1, count))
        self._question_rows: list[npt.NDArray[np.int64]] = (
            [part.astype(np.int64) for part in np.split(question_rows, bounds)] if count else []
        )
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
        dense_candidates = self.index.search(query_vectors, k=self.weights.candidates)
        results = []
        for number, (vector, question, hits) in enumerate(zip(query_vectors, questions, dense_candidates, strict=True)):
            candidates = {hit.entry for hit in hits}
            keyword_scores = self._keyword_candidates(question, candidates)
            parts = list(sentences[number]) if sentences is not None and self.weights.sentence_weight > 0 else []
            part_hits = self.index.search(np.vstack([v for _, v in parts]), k=self.weights.candidates) if parts else []
            part_keywords = []
            for (text, _), found in zip(parts, part_hits, strict=True):
                candidates.update(hit.entry for hit in found)
                part_keywords.append(self._keyword_candidates(text, candidates))
            scored = [self._score(entry, vector, keyword_scores) for entry in candidates]
            if parts:
                weight = self.weights.sentence_weight
                scored = [
                    replace(
                        item,
                        score=(
                            item.score
                            + weight
                            * max(
                                self._score(item.entry, part_vector, part_scores).score
                                for (_, part_vector), part_scores in zip(parts, part_keywords, strict=True)
                            )
                        )
                        / (1 + weight),
                    )
                    for item in scored
                ]
            scored.sort(key=lambda item: (-item.score, item.entry))
            results.append(scored[:k])
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
            candidates.update(int(entry) for entry in best if scores[entry] > 0)
        return scores

    def _score(
        self, entry: int, vector: npt.NDArray[np.float32], keyword_scores: npt.NDArray[np.float32] | None
    ) -> Scored:
        vectors = self.index.vectors
        question_rows = self._question_rows[entry]
        dense_question = float((vectors[question_rows] @ vector).max()) if len(question_rows) else 0.0
        qa_row = self._qa_row[entry]
        dense_qa = float(vectors[qa_row] @ vector) if qa_row >= 0 else dense_question
        keyword = float(keyword_scores[entry]) if keyword_scores is not None else 0.0
        weights = self.weights
        score = (
            weights.question_weight * dense_question
            + (1 - weights.question_weight) * dense_qa
            + weights.keyword_weight * keyword
        )
        return Scored(entry, score, dense_question, dense_qa, keyword)
