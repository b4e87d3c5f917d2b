"""Ranking: the documented score, computed for whole batches at once, ranks each question as if alone."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qa_service.answering.answerer import sentence_views
from qa_service.answering.retrieval import RankingWeights, Retriever
from qa_service.index.store import FIELD_NAMES, FaqIndex, load_index
from qa_service.settings import Settings
from tests.fakes import HashingEmbedder

QUESTIONS = [
    "How long do back spasms last?",
    "My week has been awful and work is busy. Is walking good for a back spasm? Thanks for any help.",
    "zolmitriptan dosage",
    "Can I prevent spasms by stretching every morning?",
    "banana bread recipe",
]


def reference_scores(
    index: FaqIndex, weights: RankingWeights, text: str, vector: npt.NDArray[np.float32]
) -> npt.NDArray[np.float64]:
    """The module docstring's formula, entry by entry, over every row of the index."""
    assert index.keywords is not None
    keyword = index.keywords.scores(text)
    scores = []
    for entry in range(len(index.entries)):
        rows = np.flatnonzero(index.row_entry == entry)
        fields = [FIELD_NAMES[index.row_field[row]] for row in rows]
        question_rows = [r for r, f in zip(rows, fields, strict=True) if f in ("question", "alternate")]
        question = max(float(index.vectors[r] @ vector) for r in question_rows)
        qa_rows = [r for r, f in zip(rows, fields, strict=True) if f == "qa"]
        qa = float(index.vectors[qa_rows[0]] @ vector) if qa_rows else question
        scores.append(
            weights.question_weight * question
            + (1 - weights.question_weight) * qa
            + weights.keyword_weight * float(keyword[entry])
        )
    return np.asarray(scores)


def test_a_batch_ranks_every_question_by_the_documented_score_as_if_alone(
    built_settings: Settings, fake_embedder: HashingEmbedder
) -> None:
    index = load_index(built_settings.index_dir, model=fake_embedder.name)
    weights = RankingWeights()
    assert len(index.entries) < weights.candidates  # every entry is a candidate: the reference is exact
    retriever = Retriever(index, weights)
    vectors = fake_embedder.encode(QUESTIONS)
    parts = [[(part, fake_embedder.encode([part])[0]) for part in sentence_views(q)] for q in QUESTIONS]
    assert [len(p) for p in parts] == [0, 3, 0, 0, 0]  # one long message, scored sentence by sentence too
    k = 4
    together = retriever.rank(vectors, QUESTIONS, k, parts)
    for number, question in enumerate(QUESTIONS):
        alone = retriever.rank(vectors[number : number + 1], [question], k, [parts[number]])[0]
        assert together[number] == alone
        expected = reference_scores(index, weights, question, vectors[number])
        if parts[number]:
            best = np.max([reference_scores(index, weights, t, v) for t, v in parts[number]], axis=0)
            expected = (expected + weights.sentence_weight * best) / (1 + weights.sentence_weight)
        order = sorted(range(len(expected)), key=lambda entry: (-expected[entry], entry))[:k]
        assert [s.entry for s in alone] == order
        assert np.allclose([s.score for s in alone], expected[order], atol=1e-6)


def test_an_empty_batch_ranks_nothing(built_settings: Settings, fake_embedder: HashingEmbedder) -> None:
    index = load_index(built_settings.index_dir, model=fake_embedder.name)
    retriever = Retriever(index, RankingWeights())
    assert retriever.rank(np.zeros((0, fake_embedder.dimension), np.float32), [], 3) == []
