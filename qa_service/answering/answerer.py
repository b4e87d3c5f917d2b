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

import numpy as np

from qa_service.answering.calibration import ConfidenceModel
from qa_service.answering.context import (
    Topic,
    Turn,
    asks_it_all,
    leans_on_context,
    names_rather,
    read_with,
    same_subject,
    told_together,
    topic_of,
)
from qa_service.answering.coverage import CorpusCoverage, Coverage, english_for
from qa_service.answering.decision import (
    Candidate,
    Decision,
    DecisionPolicy,
    decide,
    prefer_in_context,
    urgent_decision,
)
from qa_service.answering.language import LanguageGuard, language_list
from qa_service.answering.redflags import RedFlag, RedFlagRules
from qa_service.answering.retrieval import RankingWeights, Retriever
from qa_service.corpus.synonyms import Synonyms
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


QUERY_ENCODE_BATCH = 64

# How much of the conversation's topic a follow-up's vector takes (see ``Answerer._rank``)
TOPIC_WEIGHT = 0.7  # most texts per encoder call within a micro-batch (see embedder.plan_batches)


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
        # the vocabulary the build read its texts with: questions are read the same way
        self.synonyms = Synonyms.from_dict(index.manifest.synonyms)

    def clean(self, question: str) -> str:
        text = normalize_question(question)
        if not text:
            raise InvalidQuestionError("question is empty")
        if len(text) > self.policy.max_question_chars:
            raise InvalidQuestionError(
                f"question is {len(text)} characters long; the limit is {self.policy.max_question_chars}"
            )
        return text

    def ask(self, question: str, top_k: int = 3, context: Sequence[Turn] | None = None) -> Decision:
        """One question, with the conversation's previous turns when there are any."""
        return self.answer_cleaned([self.clean(question)], top_k, [context])[0]

    def ask_many(self, questions: Sequence[str], top_k: int | Sequence[int] = 3) -> list[Decision]:
        """Answer several questions with one encoder call. Red flags are checked first, always.

        ``top_k`` is one limit for all, or one per question."""
        return self.answer_cleaned([self.clean(question) for question in questions], top_k)

    def answer_cleaned(
        self,
        cleaned: Sequence[str],
        top_k: int | Sequence[int] = 3,
        contexts: Sequence[Sequence[Turn] | None] | None = None,
    ) -> list[Decision]:
        """``ask_many`` of questions already through ``clean`` (the service cleans each question once,
        for its cache key, before it joins a batch). ``contexts`` holds each question's previous turns
        (or None): see ``qa_service.answering.context``."""
        limits = [top_k] * len(cleaned) if isinstance(top_k, int) else list(top_k)
        turns_of = list(contexts) if contexts is not None else [None] * len(cleaned)
        if len(limits) != len(cleaned) or len(turns_of) != len(cleaned):
            raise ValueError("one top_k (and one context) per question is needed")
        assessed = [self._assess(text, turns) for text, turns in zip(cleaned, turns_of, strict=True)]
        flags = [flag for flag, _, _ in assessed]
        unflagged = [text for text, flag in zip(cleaned, flags, strict=True) if not flag]
        identified = iter(self.language.detect_many(unflagged))
        foreign = [None if flag else next(identified) for flag in flags]
        answerable = [not flag and language is None for flag, language in zip(flags, foreign, strict=True)]
        topics = [
            topic_of(turns, self._question_of) if turns and ok else None
            for turns, ok in zip(turns_of, answerable, strict=True)
        ]
        # each question alone, then those with a topic read in its context: one encoder call for all
        alone = [self.synonyms.canonical(text) for text, ok in zip(cleaned, answerable, strict=True) if ok]
        ranked_topics = [topic for topic, ok in zip(topics, answerable, strict=True) if ok]
        pairs = [
            (at, self.synonyms.canonical(topic.text)) for at, topic in enumerate(ranked_topics) if topic is not None
        ]
        rankings = self._rank(alone, alone, max(max(limits) + 1, 10), pairs) if alone else []
        ranked = iter(zip(alone, rankings, strict=True))
        together = [read_with(alone[at], topic) for at, topic in pairs]
        in_context = iter(zip(together, rankings[len(alone) :], strict=True))
        decisions = []
        for text, (flag, note, earlier), language, limit, topic in zip(
            cleaned, assessed, foreign, limits, topics, strict=True
        ):
            if flag is not None:
                decisions.append(urgent_decision(flag, self.policy))
                continue
            if language is not None:
                decision = self._foreign()
            else:
                decision = self._decide(*next(ranked), limit)
                if topic is not None:
                    decision = self._in_context(text, decision, topic, *next(in_context), limit)
            if earlier is not None and not self._moves_on(text, decision):
                # the conversation told an emergency and this message is still about it: it asks
                # nothing the FAQ answers ("like 25 maybe, im just sleepy now"), or nothing that names
                # what its answer is about ("should i ring the gp in the morning")
                decisions.append(urgent_decision(earlier, self.policy))
                continue
            decisions.append(replace(decision, note=self._note(note), disclaimer=self.policy.disclaimer))
        return decisions

    def _in_context(
        self, text: str, alone: Decision, topic: Topic, read: str, ranking: list[Candidate], limit: int
    ) -> Decision:
        """The reply to a message with a topic: its own (``alone``) or the reading in context (``read``
        ranked as ``ranking``), as ``prefer_in_context`` chooses."""
        # a follow-up asks something new: not the entry that answered the turn before
        ranking = [candidate for candidate in ranking if candidate.entry.id != topic.answer_id]
        points_back = leans_on_context(text)
        entry = self.index.entry(topic.answer_id) if topic.answer_id else None
        subject = entry.question if entry is not None else topic.about  # the FAQ's question, else the patient's
        in_scope = points_back and bool(ranking) and same_subject(text, subject, ranking[0].entry)
        followed = replace(self._decide(read, ranking, limit, in_scope=in_scope), context=topic.about)
        own, other = alone.answer, followed.answer
        unknown = alone.coverage is not None and alone.coverage.reason == "unknown_topic"
        return prefer_in_context(
            alone,
            followed,
            points_back=points_back,
            names_own=own is not None and other is not None and names_rather(text, own.entry, other.entry),
            names_unknown=unknown and not (other is not None and asks_it_all(text, other.entry)),
        )

    def _moves_on(self, text: str, decision: Decision) -> bool:
        """Whether a message after an emergency asks something else: it is answered, and says every
        word of its answer's question that carries meaning ("how long does the flu last?")."""
        answer = decision.answer
        return (
            decision.status == "answered"
            and answer is not None
            and asks_it_all(self.synonyms.canonical(text), answer.entry)
        )

    def _question_of(self, entry_id: str) -> str | None:
        entry = self.index.entry(entry_id)
        return entry.question if entry is not None else None

    def _decide(self, matched: str, ranking: list[Candidate], limit: int, *, in_scope: bool = False) -> Decision:
        """The decision on a ranking; ``in_scope``: a message that points back to a turn the FAQ
        answered, whose best entry is on that turn's subject: words the FAQ does not use ("is there a
        jab for it") do not make it another topic, and a message all of whose words the FAQ uses is
        not held to the similarity level (the intent checks and the confidence threshold still apply)."""
        coverage = self.coverage.assess(matched, ranking[0] if ranking else None)
        own_words = coverage.reason == "below_uncovered_level" and coverage.unknown_share == 0  # "check her hair"
        if in_scope and (coverage.reason == "unknown_topic" or own_words):
            coverage = replace(coverage, reason=None)
        return decide(ranking, self.policy, self.confidence, limit, coverage)

    def _assess(self, text: str, turns: Sequence[Turn] | None) -> tuple[RedFlag | None, RedFlag | None, RedFlag | None]:
        """The red-flag rules on a message, and on the conversation told so far: an emergency may be
        spread over messages ("my back hurts" ... "and I can't feel my legs"), or go on over them ("I have
        chest pain" ... "it spreads to my arm"). (rule fired, note rule, earlier emergency): an
        emergency the earlier turns told already is escalated again only when the message points back
        to it or finds no FAQ answer of its own, not when it moves on ("how long does the flu last?")."""
        if self.red_flags is None:
            return None, None, None
        flag, note = self.red_flags.assess(text)
        if flag is None and turns:
            before, told = told_together(turns, text)
            found = self.red_flags.check(told)
            if found is not None and (leans_on_context(text) or self.red_flags.check(before) is None):
                return found, note, None
            return None, note, found
        return flag, note, None

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
            self.coverage.assess(self.synonyms.canonical(self.clean(question)), ranking[0] if ranking else None)
            for question, ranking in zip(questions, rankings, strict=True)
        ]

    def candidates(self, questions: Sequence[str], k: int = 10) -> list[list[Candidate]]:
        """The ``k`` closest distinct entries per question, best first, before any decision."""
        read = self.synonyms.canonical
        return self._rank([read(self.clean(question)) for question in questions], [read(q) for q in questions], k)

    def _rank(
        self,
        cleaned: Sequence[str],
        questions: Sequence[str],
        k: int,
        followups: Sequence[tuple[int, str]] = (),
    ) -> list[list[Candidate]]:
        """Candidates of the ``cleaned`` questions; a question of several sentences is also scored
        sentence by sentence, split as it was written (``questions``).

        ``followups`` are (position in ``cleaned``, topic words) of questions also read in context:
        their candidates follow, ranked by the question's vector plus ``TOPIC_WEIGHT`` times the
        topic's (so cosine ranks by similarity to the question, plus a share of similarity to the
        topic) and by the keywords of both. One encoder call for everything."""
        parts = [sentence_views(text) for text in questions] if self.retriever.weights.sentence_weight > 0 else []
        texts = [*cleaned, *(part for found in parts for part in found), *(topic for _, topic in followups)]
        encoded = self.embedder.encode(texts, batch_size=QUERY_ENCODE_BATCH)
        vectors = encoded[: len(cleaned)]
        offsets = iter(range(len(cleaned), len(texts)))
        sentences = [[(part, encoded[next(offsets)]) for part in found] for found in parts] if parts else None
        if followups:
            topics = encoded[len(texts) - len(followups) :]
            blended = vectors[[position for position, _ in followups]] + TOPIC_WEIGHT * topics
            blended /= np.linalg.norm(blended, axis=1, keepdims=True)
            vectors = np.vstack([vectors, blended]).astype(np.float32, copy=False)
            cleaned = [*cleaned, *(read_with(cleaned[position], topic) for position, topic in followups)]
            sentences = [*sentences, *([] for _ in followups)] if sentences is not None else None
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
