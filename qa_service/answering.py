"""Answering a question: normalise it, find candidate entries, decide what to reply.

Pure Python over an index and an embedder; no HTTP here. The decision is one of:
``answered`` (one curated answer), ``clarify`` (two or more distinct answers are about equally close:
offer them), ``no_answer`` (nothing is close enough: say so and point to the clinic), and ``urgent``
(an emergency: never answered from the FAQ).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from qa_service.calibration import ConfidenceModel
from qa_service.corpus import FaqEntry
from qa_service.coverage import CorpusCoverage, Coverage, CoverageRules, english_for
from qa_service.embedder import Embedder
from qa_service.errors import InvalidQuestionError
from qa_service.index import FaqIndex
from qa_service.language import LanguageGuard, language_list
from qa_service.redflags import RedFlag, RedFlagRules
from qa_service.retrieval import RankingWeights, Retriever

Status = Literal["answered", "clarify", "no_answer", "urgent"]

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
# A different answer this close (off-topic standard deviations) whose entry holds clearly more of the
# question's words (keyword coverage ahead by this much) is offered beside the best one: the vectors
# and the words disagree, so the patient chooses.
WORDS_CLARIFY_MARGIN = 2.0
WORDS_CLARIFY_GAIN = 0.3


def sentence_views(text: str) -> list[str]:
    """The sentences (or lines) of a question that has several, each of 3+ words, at most 8; else []."""
    parts = [normalize_question(part) for part in _SENTENCE_END.split(text)]
    parts = [part for part in parts if len(part.split()) >= MIN_SENTENCE_WORDS]
    return parts[:MAX_SENTENCES] if len(parts) > 1 else []


@dataclass(frozen=True)
class Candidate:
    entry: FaqEntry
    score: float  # fused similarity used for ranking
    dense_question: float = 0.0
    dense_qa: float = 0.0
    keyword: float = 0.0
    known: float = 1.0  # share of the question's words the corpus uses (1.0 when there is no keyword index)
    confidence: float | None = None  # calibrated probability, set by decide()


@dataclass(frozen=True)
class Decision:
    status: Status
    message: str
    answer: Candidate | None = None
    alternatives: list[Candidate] = field(default_factory=list)
    red_flag: RedFlag | None = None  # the rule that made it urgent
    note: str | None = None  # e.g. "ask a clinician" for a question about one's own diagnosis or dose
    disclaimer: str = ""
    coverage: Coverage | None = None  # how the question relates to the corpus (see coverage.py)


@dataclass(frozen=True)
class DecisionPolicy:
    """Thresholds and messages of the decision; built from Settings."""

    answer_threshold: float  # minimum confidence (0..1) for an answer
    clarify_margin: float  # lead, in off-topic standard deviations, below which two answers are "close"
    answered_message: str
    clarify_message: str
    fallback_message: str
    max_question_chars: int = 1000
    languages: tuple[str, ...] = ("en",)
    unsupported_language_message: str = "Sorry, I can only answer questions in {languages}."
    urgent_message: str = "Your message may describe a medical emergency. Call your local emergency number now."
    crisis_message: str = "If you are thinking about harming yourself, call your local crisis line or emergency number."
    disclaimer: str = "This is general information, not medical advice for your situation."
    diagnosis_note: str = "Only a clinician who examines you can tell what you have."
    dose_note: str = "Ask your doctor or pharmacist how much to take."
    uncovered_message: str = "Our FAQ does not cover that topic. Please contact the clinic and our staff will help you."
    coverage: CoverageRules = field(default_factory=CoverageRules)


def _answer_key(entry: FaqEntry) -> str:
    return _normalized_answer(entry.answer)


@functools.lru_cache(maxsize=4096)
def _normalized_answer(answer: str) -> str:
    """An answer compared case- and spacing-blind (remembered: every decision compares a few)."""
    return " ".join(answer.lower().split())


def different_meaning(best: Candidate, other: Candidate) -> bool:
    """Whether ``other`` is a different answer: not the same question (duplicates), not the same text."""
    if other.entry.id in best.entry.duplicates:
        return False
    same_text = bool(best.entry.answer) and _answer_key(other.entry) == _answer_key(best.entry)
    return not same_text


def rival_of(candidates: Sequence[Candidate]) -> Candidate | None:
    """The best candidate that gives a different answer than the first one."""
    return next((c for c in candidates[1:] if different_meaning(candidates[0], c)), None) if candidates else None


def decide(
    candidates: Sequence[Candidate],
    policy: DecisionPolicy,
    confidence: ConfidenceModel,
    top_k: int,
    coverage: Coverage | None = None,
) -> Decision:
    """The reply for candidates sorted best first.

    no_answer: the corpus does not cover the question (``coverage``, see coverage.py), whatever the
    scores. clarify: the question is clearly on topic and one or more *different* answers are about
    as close as the best one (within ``clarify_margin`` off-topic standard deviations), or a different
    answer not far behind holds clearly more of the question's words: offer them. answered: otherwise,
    when the best entry is probably right (confidence >= threshold). no_answer: otherwise. Entries
    asking the same question as the best one, or giving the same answer, are never a different
    meaning to choose between; they are listed as related questions."""
    if coverage is not None and not coverage.covered:
        return Decision("no_answer", policy.uncovered_message, coverage=coverage)
    if not candidates:
        return Decision("no_answer", policy.fallback_message, coverage=coverage)
    best = candidates[0]

    def on_topic(candidate: Candidate) -> bool:
        """Close enough to the question to be offered at all: confident even with a rival level with it."""
        return confidence.confidence(candidate, candidate.score) >= policy.answer_threshold

    def rated(candidate: Candidate, rival: float | None) -> Candidate:
        return replace(candidate, confidence=round(confidence.confidence(candidate, rival), 4))

    others = [c for c in candidates[1:] if different_meaning(best, c)]
    second = others[0].score if others else None
    close = [c for c in others if on_topic(c) and confidence.margin(best.score, c.score) < policy.clarify_margin]
    if close and on_topic(best):
        offered = [rated(best, second), *(rated(c, best.score) for c in close)]
        return Decision("clarify", policy.clarify_message, None, offered[: max(2, top_k)], coverage=coverage)
    answer = rated(best, second)
    if answer.confidence is not None and answer.confidence >= policy.answer_threshold:
        wordier = [
            c
            for c in others
            if c.keyword >= best.keyword + WORDS_CLARIFY_GAIN
            and confidence.margin(best.score, c.score) < WORDS_CLARIFY_MARGIN
            and on_topic(c)
        ]
        if wordier:
            offered = [answer, *(rated(c, best.score) for c in wordier)]
            return Decision("clarify", policy.clarify_message, None, offered[: max(2, top_k)], coverage=coverage)
        related = [rated(c, best.score) for c in candidates[1:] if on_topic(c)][:top_k]
        return Decision("answered", policy.answered_message, answer, related, coverage=coverage)
    return Decision("no_answer", policy.fallback_message, coverage=coverage)


def urgent_decision(flag: RedFlag, policy: DecisionPolicy) -> Decision:
    """The reply to a message that fired a red-flag rule: the emergency or crisis message, no answer."""
    message = policy.crisis_message if flag.message == "crisis" else policy.urgent_message
    return Decision("urgent", message, red_flag=flag, disclaimer=policy.disclaimer)


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
        cleaned = [self.clean(question) for question in questions]
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
        ranked = iter(self.candidates(to_rank, k=max(max(limits) + 1, 10)) if to_rank else [])
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
        cleaned = [self.clean(question) for question in questions]
        parts = [sentence_views(text) for text in questions] if self.retriever.weights.sentence_weight > 0 else []
        texts = cleaned + [part for found in parts for part in found]
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
