from __future__ import annotations

import numpy as np

from qa_service.corpus.duplicates import answer_overlap, find_near_duplicates
from qa_service.corpus.entries import FaqEntry


def test_pairs_by_meaning_and_whether_answers_agree() -> None:
    entries = [
        FaqEntry(id="a", question="How to prevent spasms?", answer="Stay hydrated and stretch."),
        FaqEntry(id="b", question="How to prevent spasms?", answer="Exercise in the long run."),
        FaqEntry(id="c", question="What to do for a spasm in the back?", answer="Stretch the muscle."),
        FaqEntry(id="d", question="What to do for a spasm in back?", answer="Stretch the muscle!"),
        FaqEntry(id="e", question="Is walking good?", answer="Yes."),
    ]
    vectors = np.eye(5, dtype=np.float32)
    vectors[3] = 0.96 * vectors[2] + 0.28 * vectors[3]  # c and d mean the same (cosine 0.96)
    pairs = find_near_duplicates(entries, vectors)
    assert [(p.first, p.second, p.answers_differ) for p in pairs] == [("a", "b", True), ("c", "d", False)]
    assert pairs[0].question_similarity == 1.0  # same words, whatever the vectors say
    assert pairs[1].question_similarity == 0.96


def test_answer_overlap() -> None:
    assert answer_overlap("Stretch the muscle.", "stretch the MUSCLE") == 1.0
    assert answer_overlap("one two", "three four") == 0.0
