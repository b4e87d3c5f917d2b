"""Near-duplicate entries, found at build time: questions that mean the same thing.

Pairs whose question vectors are at least ``SAME_QUESTION`` similar (or whose questions are equal up
to case and punctuation) are reported. When their answers also say the same (word overlap of at
least ``SAME_ANSWER``) they are plain duplicates; otherwise the answers disagree and the pair needs
a reviewer: a patient asking that question could get either answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from qa_service.corpus.entries import FaqEntry

SAME_QUESTION = 0.93
SAME_ANSWER = 0.8
_CHUNK = 1024


@dataclass(frozen=True)
class NearDuplicate:
    first: str
    second: str
    question_similarity: float
    answer_overlap: float
    answers_differ: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "first": self.first,
            "second": self.second,
            "question_similarity": self.question_similarity,
            "answer_overlap": self.answer_overlap,
            "answers_differ": self.answers_differ,
        }


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def answer_overlap(first: str, second: str) -> float:
    """Jaccard overlap of the answers' words (1.0: the same words)."""
    return _overlap(_words(first), _words(second))


def _overlap(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@dataclass(frozen=True)
class KnownPairs:
    """What an earlier build found, for entries whose question vectors have not changed since:
    their similarities to each other are known, so only the changed entries need comparing. And
    for pairs of entries whose answers have not changed either, how much the answers overlap (a
    44k-entry corpus has thousands of pairs: reading all their answers' words again costs ~0.5 s)."""

    unchanged: frozenset[int]  # positions (in the new entries) of entries with the same question vector
    similar: dict[tuple[int, int], float]  # (first, second) positions, first < second: pairs found then
    # (first, second) -> (answer_overlap, answers_differ) as found then, for pairs with unchanged answers
    answers: dict[tuple[int, int], tuple[float, bool]] = field(default_factory=dict)


def find_near_duplicates(
    entries: Sequence[FaqEntry],
    question_vectors: npt.NDArray[np.float32],
    *,
    threshold: float = SAME_QUESTION,
    known: KnownPairs | None = None,
) -> list[NearDuplicate]:
    """Pairs of entries (by position order) whose questions mean the same, most similar first.

    With ``known``, pairs among unchanged entries come from the earlier build and only the other
    entries are compared with all: the same result, without comparing every pair again."""
    found: dict[tuple[int, int], float] = {}
    keys: dict[str, int] = {}
    for position, entry in enumerate(entries):
        key = " ".join(re.findall(r"\w+", entry.question.lower()))
        if key in keys:
            found[(keys[key], position)] = 1.0
        else:
            keys[key] = position
    count = len(entries)
    rows_to_compare = np.arange(count)
    if known is not None:
        for pair, similarity in known.similar.items():
            if pair[0] in known.unchanged and pair[1] in known.unchanged:
                found.setdefault(pair, similarity)
        rows_to_compare = np.array([p for p in range(count) if p not in known.unchanged], dtype=np.int64)
    for start in range(0, len(rows_to_compare), _CHUNK):
        chunk = rows_to_compare[start : start + _CHUNK]
        block = question_vectors[chunk] @ question_vectors.T
        rows, cols = np.nonzero(block >= threshold)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            first = int(chunk[row])
            if col != first:
                pair = (min(first, col), max(first, col))
                found.setdefault(pair, float(block[row, col]))
    pairs = []
    words: dict[int, set[str]] = {}  # an entry is often in several pairs: its words are found once
    answers = known.answers if known is not None else {}
    for (first, second), similarity in found.items():
        reused = answers.get((first, second))
        if reused is not None:
            rounded, differ = reused
        else:
            for position in (first, second):
                if position not in words:
                    words[position] = _words(entries[position].answer)
            overlap = _overlap(words[first], words[second])
            rounded, differ = round(overlap, 3), overlap < SAME_ANSWER
        pairs.append(
            NearDuplicate(entries[first].id, entries[second].id, round(min(similarity, 1.0), 4), rounded, differ)
        )
    pairs.sort(key=lambda pair: (-pair.question_similarity, pair.first, pair.second))
    return pairs
