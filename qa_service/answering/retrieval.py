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

from qa_service.index.arrays import first_of_each_group, ragged_positions
from qa_service.index.store import FIELD_NAMES, FaqIndex
from qa_service.settings import Settings

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

        ``sentences[i]`` holds (text, vector) of each sentence of question i when it has several.
        All questions and sentences are ranked together, as arrays: one search, one keyword pass,
        one rescoring, whatever the batch size."""
        count = len(questions)
        if count == 0 or not self.index.entries:
            return [[] for _ in range(count)]
        weights = self.weights
        parts = [list(found) for found in sentences] if sentences is not None and weights.sentence_weight > 0 else []
        # every text scored: the questions, then each question's sentences; owner = its question
        sentence_owner = np.repeat(np.arange(len(parts), dtype=np.int64), [len(found) for found in parts])
        owner = np.concatenate([np.arange(count, dtype=np.int64), sentence_owner])
        texts = [*questions, *(text for found in parts for text, _ in found)]
        vectors = np.vstack([query_vectors, *(vector for found in parts for _, vector in found)]).astype(
            np.float32, copy=False
        )
        keyword = self._keyword_scores(texts)
        pair_owner, pair_entry = self._candidates(vectors, owner, keyword)
        # each text is scored on every candidate of its question
        starts = np.searchsorted(pair_owner, np.arange(count))
        sizes = np.bincount(pair_owner, minlength=count)
        pair_of = ragged_positions(starts[owner], sizes[owner])  # (text, candidate) -> the candidate's pair
        text_of = np.repeat(np.arange(len(texts)), sizes[owner])
        dense_question, dense_qa = self._dense(vectors, text_of, pair_entry[pair_of])
        keyword_part = (
            keyword[text_of, pair_entry[pair_of]].astype(np.float64)
            if keyword is not None
            else np.zeros(len(pair_of), dtype=np.float64)
        )
        fused = (
            weights.question_weight * dense_question
            + (1 - weights.question_weight) * dense_qa
            + weights.keyword_weight * keyword_part
        )
        questions_only = len(pair_entry)  # the first len(pair_entry) scores are the questions' own
        score = fused[:questions_only]
        if len(pair_of) > questions_only:
            best_part = np.full(questions_only, -np.inf)
            np.maximum.at(best_part, pair_of[questions_only:], fused[questions_only:])
            split = np.isfinite(best_part)
            weight = weights.sentence_weight
            score = np.where(split, (score + weight * best_part) / (1 + weight), score)
        order = np.lexsort((pair_entry, -score, pair_owner))  # by question, score, then entry: ties are deterministic
        kept = order[first_of_each_group(pair_owner[order], count, k)]
        results: list[list[Scored]] = [[] for _ in range(count)]
        for question, entry, total, question_score, qa_score, keyword_score in zip(
            pair_owner[kept].tolist(),
            pair_entry[kept].tolist(),
            score[kept].tolist(),
            dense_question[kept].tolist(),
            dense_qa[kept].tolist(),
            keyword_part[kept].tolist(),
            strict=True,
        ):
            results[question].append(Scored(entry, total, question_score, qa_score, keyword_score))
        return results

    def _keyword_scores(self, texts: Sequence[str]) -> npt.NDArray[np.float32] | None:
        """Each text's keyword score of every entry (None when keywords are off)."""
        keywords = self.index.keywords
        if keywords is None or self.weights.keyword_weight <= 0:
            return None
        return keywords.scores_many(texts)

    def _candidates(
        self,
        vectors: npt.NDArray[np.float32],
        owner: npt.NDArray[np.int64],
        keyword: npt.NDArray[np.float32] | None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(question, entry) pairs, sorted: every entry among a text's best ``candidates`` by its
        vectors or by its keywords (those scoring above 0) is a candidate of the text's question."""
        limit = self.weights.candidates
        size = len(self.index.entries)
        found = self.index.candidate_entries(vectors, k=limit)
        keys = [owner[text] * size + entries for text, entries in enumerate(found)]
        if keyword is not None and size:
            top = min(limit, size)
            best = np.argpartition(-keyword, top - 1, axis=1)[:, :top]
            scored = np.take_along_axis(keyword, best, axis=1) > 0
            keys.append((owner[:, None] * size + best)[scored])
        unique = np.unique(np.concatenate(keys))
        return unique // size, unique % size

    def _dense(
        self, vectors: npt.NDArray[np.float32], text_of: npt.NDArray[np.int64], entry_of: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per (text, entry): the best question-like cosine and the question+answer cosine (the former
        when the entry has no answer)."""
        counts = self._question_count[entry_of]
        rows = self._question_rows[ragged_positions(self._question_start[entry_of], counts)]
        qa_rows = self._qa_row[entry_of]
        has_qa = qa_rows >= 0
        all_rows = np.concatenate([rows, qa_rows[has_qa]])
        row_text = np.concatenate([np.repeat(text_of, counts), text_of[has_qa]])
        similarities = self._similarities(vectors, all_rows, row_text)
        dense_question = np.zeros(len(entry_of), dtype=np.float64)
        present = counts > 0
        if present.any():
            offsets = (np.cumsum(counts) - counts)[present]
            dense_question[present] = np.maximum.reduceat(similarities[: len(rows)], offsets)
        dense_qa = dense_question.copy()
        dense_qa[has_qa] = similarities[len(rows) :]
        return dense_question, dense_qa

    def _similarities(
        self, vectors: npt.NDArray[np.float32], rows: npt.NDArray[np.int64], row_text: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """Cosine of each index row ``rows[i]`` with the vector of text ``row_text[i]``."""
        index_vectors = self.index.vectors
        order = np.argsort(row_text, kind="stable")
        bounds = np.searchsorted(row_text[order], np.arange(len(vectors) + 1))
        ordered = rows[order]
        similarities = np.empty(len(rows), dtype=np.float32)
        for text, (start, end) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)):
            if end > start:  # one text's rows at a time: the gathered block stays in cache
                similarities[order[start:end]] = index_vectors[ordered[start:end]] @ vectors[text]
        return similarities


def weights_from_settings(settings: Settings) -> RankingWeights:
    return RankingWeights(
        question_weight=settings.question_weight,
        keyword_weight=settings.keyword_weight,
        sentence_weight=settings.sentence_weight,
    )
