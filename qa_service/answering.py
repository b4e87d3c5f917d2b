"""Answering a question: normalise it, find candidate entries, decide what to reply.

Pure Python over an index and an embedder; no HTTP here. The decision is one of:
``answered`` (one curated answer), ``clarify`` (two or more distinct answers are about equally close:
offer them), ``no_answer`` (nothing is close enough: say so and point to the clinic), and ``urgent``
(an emergency: never answered from the FAQ).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from qa_service.corpus import FaqEntry
from qa_service.embedder import Embedder
from qa_service.errors import InvalidQuestionError
from qa_service.index import FaqIndex

Status = Literal["answered", "clarify", "no_answer", "urgent"]

# Characters that change nothing visible but defeat matching: zero-width, bidi marks, BOM, soft hyphen.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def normalize_question(text: str) -> str:
    """NFKC, invisible and control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Candidate:
    entry: FaqEntry
    score: float


@dataclass(frozen=True)
class Decision:
    status: Status
    message: str
    answer: Candidate | None = None
    alternatives: list[Candidate] = field(default_factory=list)


@dataclass(frozen=True)
class DecisionPolicy:
    """Thresholds and messages of the decision; built from Settings."""

    answer_threshold: float
    clarify_margin: float
    answered_message: str
    clarify_message: str
    fallback_message: str
    max_question_chars: int = 1000


def decide(candidates: Sequence[Candidate], policy: DecisionPolicy, top_k: int) -> Decision:
    """The reply for candidates sorted best first."""
    if not candidates or candidates[0].score < policy.answer_threshold:
        return Decision("no_answer", policy.fallback_message)
    best = candidates[0]
    same_question = set(best.entry.duplicates)
    # Entries that ask the same question as the best one are not a different meaning to choose
    # between; they are offered as further answers, never as a "did you mean".
    distinct = [c for c in candidates[1:] if c.entry.id not in same_question]
    close = [c for c in distinct if c.score >= policy.answer_threshold and best.score - c.score < policy.clarify_margin]
    if close:
        return Decision("clarify", policy.clarify_message, None, [best, *close][: max(2, top_k)])
    related = [c for c in candidates[1:] if c.score >= policy.answer_threshold][:top_k]
    return Decision("answered", policy.answered_message, best, related)


class Answerer:
    """Answers questions from one loaded index."""

    def __init__(self, index: FaqIndex, embedder: Embedder, policy: DecisionPolicy) -> None:
        self.index = index
        self.embedder = embedder
        self.policy = policy

    def clean(self, question: str) -> str:
        text = normalize_question(question)
        if not text:
            raise InvalidQuestionError("question is empty")
        if len(text) > self.policy.max_question_chars:
            raise InvalidQuestionError(
                f"question is {len(text)} characters long; the limit is {self.policy.max_question_chars}"
            )
        return text

    def ask(self, question: str, top_k: int = 3) -> Decision:
        return self.ask_many([question], top_k)[0]

    def ask_many(self, questions: Sequence[str], top_k: int = 3) -> list[Decision]:
        """Answer several questions with one encoder call."""
        ranked = self.candidates(questions, k=max(top_k + 1, 10))
        return [decide(candidates, self.policy, top_k) for candidates in ranked]

    def candidates(self, questions: Sequence[str], k: int = 10) -> list[list[Candidate]]:
        """The ``k`` closest distinct entries per question, best first, before any decision."""
        cleaned = [self.clean(question) for question in questions]
        vectors = self.embedder.encode(cleaned, batch_size=max(1, min(len(cleaned), 64)))
        return [
            [Candidate(self.index.entries[hit.entry], hit.score) for hit in hits]
            for hits in self.index.search(vectors, k=k)
        ]
