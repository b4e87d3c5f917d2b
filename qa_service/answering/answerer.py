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
from dataclasses import replace

from qa_service.answering.calibration import ConfidenceModel
from qa_service.answering.coverage import CorpusCoverage, Coverage, english_for
from qa_service.answering.decision import Candidate, Decision, DecisionPolicy, decide, urgent_decision
from qa_service.answering.language import LanguageGuard, language_list
from qa_service.answering.redflags import RedFlag, RedFlagRules
from qa_service.answering.retrieval import RankingWeights, Retriever
from qa_service.errors import InvalidQuestionError
from qa_service.index.store import FaqIndex
from qa_service.model.embedder import Embedder

# Characters that change nothing visible but defeat matching: zero-width, bidi marks, BOM, soft hyphen.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # exactly Unicode category Cc


def normalize_question(text: str) -> str:
    """NFKC, invisible and control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


_SENTENCE_END = re.compile(r"\n+|(?<=[.?!])\s+")


MIN_SENTENCE_WORDS = 3


QUERY_ENCODE_BATCH = 64  # most texts per encoder call within a micro-batch (see embedder.plan_batches)


MAX_SENTENCES = 8


def sentence_views(text: str) -> list[str]:
    """The sentences (or lines) of a question that has several, each of 3+ words, at most 8; else []."""
    parts = [normalize_question(part) for part in _SENTENCE_END.split(text)]
    parts = [part for part in parts if len(part.split()) >= MIN_SENTENCE_WORDS]
    return parts[:MAX_SENTENCES] if len(parts) > 1 else []


class Answerer:
    """Answers questions from one loaded index."""

    def __init__(
        self,
        index: FaqIndex,
        embedder: Embedder,
        policy: DecisionPolicy,
        weights: RankingWeights | None = None,
        red_flags: RedFlagRules | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.policy = policy
        self.red_flags = red_flags
        self.retriever = Retriever(index, weights or RankingWeights())
        self.confidence = ConfidenceModel.for_index(index.manifest.calibration)
        self.language = LanguageGuard(policy.languages)
        self.coverage = corpus_coverage(index, policy)

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

    def ask_many(self, questions: Sequence[str], top_k: int | Sequence[int] = 3) -> list[Decision]:
        """Answer several questions with one encoder call. Red flags are checked first, always.

        ``top_k`` is one limit for all, or one per question."""
        return self.answer_cleaned([self.clean(question) for question in questions], top_k)

    def answer_cleaned(self, cleaned: Sequence[str], top_k: int | Sequence[int] = 3) -> list[Decision]:
        """``ask_many`` of questions already through ``clean`` (the service cleans each question once,
        for its cache key, before it joins a batch)."""
        limits = [top_k] * len(cleaned) if isinstance(top_k, int) else list(top_k)
        if len(limits) != len(cleaned):
            raise ValueError("one top_k per question is needed")
        assessed = [self.red_flags.assess(text) if self.red_flags is not None else (None, None) for text in cleaned]
        flags = [flag for flag, _ in assessed]
        unflagged = [text for text, flag in zip(cleaned, flags, strict=True) if not flag]
        identified = iter(self.language.detect_many(unflagged))
        foreign = [None if flag else next(identified) for flag in flags]
        to_rank = [
            text for text, flag, language in zip(cleaned, flags, foreign, strict=True) if not flag and language is None
        ]
        ranked = iter(self._rank(to_rank, to_rank, k=max(max(limits) + 1, 10)) if to_rank else [])
        decisions = []
        for text, (flag, note), language, limit in zip(cleaned, assessed, foreign, limits, strict=True):
            if flag is not None:
                decisions.append(urgent_decision(flag, self.policy))
                continue
            if language is not None:
                decision = self._foreign()
            else:
                ranking = next(ranked)
                coverage = self.coverage.assess(text, ranking[0] if ranking else None)
                decision = decide(ranking, self.policy, self.confidence, limit, coverage)
            decisions.append(replace(decision, note=self._note(note), disclaimer=self.policy.disclaimer))
        return decisions

    def _note(self, found: RedFlag | None) -> str | None:
        if found is None:
            return None
        return self.policy.dose_note if found.message == "dose" else self.policy.diagnosis_note

    def _foreign(self) -> Decision:
        names = language_list(self.policy.languages)
        return Decision("no_answer", self.policy.unsupported_language_message.format(languages=names))

    def escalated(self, questions: Sequence[str]) -> list[bool]:
        """Whether a red-flag rule fires on each question (``ask`` replies urgent to those)."""
        rules = self.red_flags
        return [rules is not None and rules.check(self.clean(question)) is not None for question in questions]

    def coverage_of(self, questions: Sequence[str], rankings: Sequence[Sequence[Candidate]]) -> list[Coverage]:
        """How the corpus covers each question, given its candidates (as ``candidates`` returns them)."""
        return [
            self.coverage.assess(self.clean(question), ranking[0] if ranking else None)
            for question, ranking in zip(questions, rankings, strict=True)
        ]

    def candidates(self, questions: Sequence[str], k: int = 10) -> list[list[Candidate]]:
        """The ``k`` closest distinct entries per question, best first, before any decision."""
        return self._rank([self.clean(question) for question in questions], questions, k)

    def _rank(self, cleaned: Sequence[str], questions: Sequence[str], k: int) -> list[list[Candidate]]:
        """Candidates of the ``cleaned`` questions; a question of several sentences is also scored
        sentence by sentence, split as it was written (``questions``)."""
        parts = [sentence_views(text) for text in questions] if self.retriever.weights.sentence_weight > 0 else []
        texts = [*cleaned, *(part for found in parts for part in found)]
        encoded = self.embedder.encode(texts, batch_size=QUERY_ENCODE_BATCH)
        vectors = encoded[: len(cleaned)]
        offsets = iter(range(len(cleaned), len(texts)))
        sentences = [[(part, encoded[next(offsets)]) for part in found] for found in parts] if parts else None
        entries = self.index.entries
        keywords = self.index.keywords
        known = [keywords.known_share(text) if keywords is not None else 1.0 for text in cleaned]
        return [
            [Candidate(entries[s.entry], s.score, s.dense_question, s.dense_qa, s.keyword, share) for s in ranked]
            for ranked, share in zip(self.retriever.rank(vectors, cleaned, k, sentences), known, strict=True)
        ]


def corpus_coverage(index: FaqIndex, policy: DecisionPolicy) -> CorpusCoverage:
    """The coverage check of one index, with the general-English word list of the service's language
    (none, and so no word check, for a language the word list does not know)."""
    rules = policy.coverage
    english = english_for(policy.languages) if rules.enabled and index.keywords is not None else None
    return CorpusCoverage(index.keywords, index.manifest.calibration, rules, english)
