"""The decision: answered, clarify, no_answer or urgent, from ranked candidates and a calibrated confidence.

Pure Python, no model and no HTTP. ``decide`` is what the API, the CLI and the evaluation all use.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from qa_service.answering.calibration import ConfidenceModel
from qa_service.answering.coverage import Coverage, CoverageRules
from qa_service.answering.redflags import RedFlag
from qa_service.corpus.entries import FaqEntry

Status = Literal["answered", "clarify", "no_answer", "urgent"]


# A different answer this close (off-topic standard deviations) whose entry holds clearly more of the
# question's words (keyword coverage ahead by this much) is offered beside the best one: the vectors
# and the words disagree, so the patient chooses.
WORDS_CLARIFY_MARGIN = 2.0


WORDS_CLARIFY_GAIN = 0.3


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
    context: str | None = None  # the earlier question the message was read with (see context.py)


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


def prefer_in_context(
    alone: Decision, together: Decision, *, points_back: bool, names_own: bool, names_unknown: bool = False
) -> Decision:
    """The reply to a message with context. Read with the conversation's topic when that finds an
    answer and the message alone does not; when the message points back ("is it contagious?") and
    the topic leads to another entry; or when the topic's answer is the more confident. Never when the
    message says what tells its own answer from the one in context (``names_own``: "when should I
    see a dr about covid, had it 5 days" after strep throat), nor when it names something the FAQ does not
    cover (``names_unknown``: the coverage check's unknown topic, and no entry the message names was
    found in context) without pointing back: it asks about that, not about the conversation's topic.
    Else the message's own reply."""
    if together.status != "answered" or together.answer is None:
        return alone
    if names_unknown and not points_back:  # "how do I lower my cholesterol" after a back-pain question
        return alone
    if alone.status != "answered" or alone.answer is None:
        return together
    if together.answer.entry.id == alone.answer.entry.id or names_own:
        return alone
    if points_back:
        return together
    if (together.answer.confidence or 0.0) > (alone.answer.confidence or 0.0):
        return together
    return alone


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
