"""Whether the FAQ covers a question at all, before asking which entry answers it best.

A question can sound like an FAQ entry without being about anything the FAQ covers: "how do I know
if I have diabetes" is close, word for word, to a back-pain FAQ's "How do you know if you have a
muscle spasm?". Similarity alone cannot tell, so three checks judge coverage, each computed from the
corpus itself, with no user traffic:

1. **Topic words the FAQ never uses.** Each word of the question weighs by how rare it is in general
   English (``wordfreq``): "diabetes" weighs much, "know" nothing. A question is not covered when the
   words no entry mentions carry ``unknown_share`` of its weight or more, its weightiest unknown word
   weighs ``unknown_weight`` or more, and it names nothing the corpus is about: none of the
   corpus's own topic words (words used by ``topic_share`` of the entries or more, such as "covid"
   in a COVID FAQ) and no rare word the corpus uses (``named_weight`` or more: a drug or syndrome
   name an entry mentions). A question that names what the FAQ talks about is about it, whatever
   else it says. Misspellings of corpus or English words and simple inflections ("diagnosed",
   "panicking") count as the word meant.
2. **Requests the FAQ never answers.** Costs, insurance, referrals, appointments and questions about
   pregnancy or children (``INTENTS``): when no entry's question or alternate mentions one of these,
   a question asking about it is not covered, whatever its topic ("how much does a chiropractor
   visit cost" to an FAQ that never talks about prices).
3. **No closer than uncovered topics.** Each build asks the FAQ medical questions about topics its
   vocabulary lacks (``data/uncovered_reference.txt``: conditions, tests, services, medicines, in the
   shapes patients use) and records how close they come (``uncovered_mean``, ``uncovered_std`` in the
   manifest's calibration). A best match scoring less than ``level_margin`` standard deviations above
   that level is no better evidence than a question on a topic the FAQ lacks.

Pure Python over the keyword index; ``wordfreq`` is imported here only.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import numpy as np

from qa_service.index.keywords import STOPWORDS, KeywordIndex, stem

REFERENCE_FILE = "uncovered_reference.txt"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile(r"[a-z0-9]+")
# Contractions typed without their apostrophe, and the pieces a split contraction leaves.
_CONTRACTIONS = _words(
    "whats cant wont isnt arent didnt wasnt werent couldnt shouldnt wouldnt hasnt havent hadnt "
    "youre theyre thats theres hes shes lets ve ll re don doesn didn isn aren wasn couldn "
    "shouldn wouldn won hasn haven"
)


_SUFFIXES = ("ing", "ed", "ly", "er", "ness")
COMMON_ZIPF = 5.0  # words at least this frequent in general English carry no weight ("know", "back")
MAX_WEIGHT = 3.0  # the weight of a word general English does not know (a rare name, a misspelling)
MISSPELT_ZIPF = 2.5  # a word rarer than this, one edit from a common word, is taken as that word
INTENDED_ZIPF = 3.0  # how common that word must be
MIN_REFERENCE = 30  # fewer uncovered reference questions than this: the corpus covers nearly every topic

# What a patient may ask of the clinic, beyond a topic: checked against the entries' questions and
# alternates (see check 2 above). Words as typed, lower case.
INTENTS: dict[str, frozenset[str]] = {
    "cost": _words("cost costs price prices pricing fee fees charge charges pay paying"),
    "insurance": _words("insurance insured insurer medicare medicaid copay"),
    "referral": _words("referral referrals refer referred"),
    "booking": _words("appointment appointments booking schedule reschedule"),
    "population": _words(
        "pregnant pregnancy breastfeeding baby babies infant infants toddler toddlers newborn child "
        "children kid kids teen teens teenager teenagers"
    ),
}

Reason = str  # "unknown_topic", "intent:<name>", "below_uncovered_level"


@dataclass(frozen=True)
class CoverageRules:
    """The thresholds of the three checks (from Settings)."""

    enabled: bool = True
    unknown_share: float = 0.33
    unknown_weight: float = 0.65
    topic_share: float = 0.2
    named_weight: float = 2.5  # a known word this rare (zipf below 2.5) names something the FAQ covers
    level_margin: float = 1.0
    intents: tuple[str, ...] = tuple(INTENTS)


@dataclass(frozen=True)
class Word:
    """One word of a question as the coverage check sees it."""

    text: str
    weight: float  # 0 (common in general English) .. MAX_WEIGHT (unknown to general English)
    known: bool  # some entry of the corpus uses it (or the corpus word it misspells)
    topic: float  # share of the entries that use it (0 when unknown)


@dataclass(frozen=True)
class Coverage:
    """How a question relates to the corpus; ``reason`` is None when the corpus covers it."""

    words: tuple[Word, ...]
    unknown_share: float
    unknown_weight: float
    topic: float
    intents: tuple[str, ...]  # intents asked about that no entry's question mentions
    level: float | None  # the best match's score, in standard deviations above the uncovered level
    reason: Reason | None

    @property
    def covered(self) -> bool:
        return self.reason is None

    def unknown_words(self) -> list[str]:
        """The weighty words no entry uses, weightiest first (for `qa-service ask --explain`)."""
        unknown = [word for word in self.words if not word.known and word.weight > 0]
        return [word.text for word in sorted(unknown, key=lambda word: -word.weight)]


class EnglishWords:
    """How common each word is in general English (``wordfreq``'s word list, loaded once)."""

    def __init__(self, language: str = "en") -> None:
        from wordfreq import get_frequency_dict

        self.language = language
        self._frequency = get_frequency_dict(language, wordlist="large")
        self.zipf = functools.lru_cache(maxsize=1 << 16)(self._zipf)
        self.meant = functools.lru_cache(maxsize=1 << 14)(self._meant)

    def _zipf(self, word: str) -> float:
        frequency = self._frequency.get(word, 0.0)
        return math.log10(frequency) + 9.0 if frequency > 0 else 0.0

    def weight(self, word: str) -> float:
        return min(MAX_WEIGHT, max(0.0, COMMON_ZIPF - self.zipf(word)))

    def _meant(self, word: str) -> str:
        """``word``, or the commonest English word one edit away when ``word`` is rare or unknown."""
        if len(word) < 4 or self.zipf(word) >= MISSPELT_ZIPF:
            return word
        found = [candidate for candidate in _one_edit_words(word) if self.zipf(candidate) >= INTENDED_ZIPF]
        return max(found, key=lambda candidate: (self.zipf(candidate), candidate)) if found else word


def _one_edit_words(word: str) -> Iterator[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    for left, right in splits:
        if right:
            yield left + right[1:]
            for letter in letters:
                yield left + letter + right[1:]
        if len(right) > 1:
            yield left + right[1] + right[0] + right[2:]
        for letter in letters:
            yield left + letter + right


@functools.lru_cache(maxsize=1)
def english_words(language: str = "en") -> EnglishWords:
    """One shared word list per process (44 MB for English; 0.5 s to load)."""
    return EnglishWords(language)


def english_for(languages: Sequence[str]) -> EnglishWords | None:
    """The word list of the service's first language, or None when ``wordfreq`` has none for it."""
    try:
        return english_words(languages[0] if languages else "en")
    except LookupError:
        return None


def question_words(text: str) -> list[str]:
    """Lower-cased words without stop words, contractions, numbers or single letters."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    plain = plain.replace("'", "")
    return [
        word
        for word in _WORD.findall(plain)
        if word not in STOPWORDS and word not in _CONTRACTIONS and not word.isdigit() and len(word) > 1
    ]


def _inflections(word: str) -> Iterator[str]:
    """``word`` and the plain forms it may inflect: diagnosed -> diagnose, panicking -> panic."""
    yield word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            yield base
            yield base + "e"
            if base[-1] == base[-2]:
                yield base[:-1]
            if base.endswith("i"):
                yield base[:-1] + "y"
            if base.endswith("ck"):
                yield base[:-1]


class SimilarityLevel(Protocol):
    @property
    def score(self) -> float: ...


class CorpusCoverage:
    """What one index's corpus covers: its words, how widely each is used, the intents its questions
    mention, and the uncovered-topic level its build measured."""

    def __init__(
        self,
        keywords: KeywordIndex | None,
        calibration: dict[str, float] | None,
        rules: CoverageRules,
        english: EnglishWords | None,
    ) -> None:
        self.rules = rules
        self.keywords = keywords
        self.english = english
        stats = calibration or {}
        count = stats.get("uncovered_count", 0)
        self.level_mean: float | None = stats.get("uncovered_mean") if count >= MIN_REFERENCE else None
        self.level_std = max(float(stats.get("uncovered_std", 1.0)), 1e-3)
        if keywords is not None and keywords.size:
            present = [field.tocsc().astype(bool) for field in keywords.fields]
            anywhere = present[0]
            for field in present[1:]:
                anywhere = anywhere + field
            self._share = np.diff(anywhere.tocsc().indptr) / keywords.size  # entries using each term
            in_questions = np.diff(present[0].indptr) > 0  # field 0: questions and alternates
        else:
            self._share = np.zeros(0)
            in_questions = np.zeros(0, dtype=bool)
        vocab = keywords.vocab if keywords is not None else {}
        self.asked_intents = frozenset(
            name
            for name, words in INTENTS.items()
            if any(stem(word) in vocab and in_questions[vocab[stem(word)]] for word in words)
        )

    def term(self, word: str) -> str | None:
        """The corpus term ``word`` stands for (itself, an inflection or a misspelling), or None."""
        if self.keywords is None:
            return None
        vocab = self.keywords.vocab
        for form in _inflections(word):
            term = stem(form)
            if term in vocab:
                return term
        if self.english is not None and self.english.zipf(word) >= MISSPELT_ZIPF:
            return None  # a real word, not a misspelling of a corpus word
        corrected = self.keywords.corrector().correct(stem(word))
        return corrected if corrected in vocab else None

    def words(self, question: str) -> list[Word]:
        found = []
        for text in question_words(question):
            term = self.term(text)
            meant = text
            if term is None and self.english is not None:
                meant = self.english.meant(text)
                if meant != text:
                    if meant in STOPWORDS or meant in _CONTRACTIONS:
                        continue  # a misspelt "should" carries no topic
                    term = self.term(meant)
            weight = self.english.weight(meant) if self.english is not None else 0.0
            share = float(self._share[self.keywords.vocab[term]]) if term is not None and self.keywords else 0.0
            found.append(Word(text, weight, term is not None, share))
        return found

    def assess(self, question: str, best: SimilarityLevel | None) -> Coverage:
        """The coverage of ``question`` given its best candidate (None: no candidate at all)."""
        rules = self.rules
        words = self.words(question)
        total = sum(word.weight for word in words)
        unknown = [word.weight for word in words if not word.known]
        unknown_share = sum(unknown) / total if total > 0 else 0.0
        unknown_weight = max(unknown, default=0.0)
        topic = max((word.topic for word in words), default=0.0)
        named = max((word.weight for word in words if word.known), default=0.0)  # a rare word the FAQ uses
        typed = {word.text for word in words}
        intents = tuple(
            name for name in rules.intents if name not in self.asked_intents and INTENTS.get(name, set()) & typed
        )
        level = (
            (best.score - self.level_mean) / self.level_std
            if best is not None and self.level_mean is not None
            else None
        )
        reason: Reason | None = None
        if rules.enabled:
            if (
                self.english is not None
                and unknown_share >= rules.unknown_share
                and unknown_weight >= rules.unknown_weight
                and topic < rules.topic_share
                and named < rules.named_weight
            ):
                reason = "unknown_topic"
            elif intents:
                reason = f"intent:{intents[0]}"
            elif level is not None and level < rules.level_margin:
                reason = "below_uncovered_level"
        return Coverage(
            tuple(words),
            round(unknown_share, 4),
            round(unknown_weight, 4),
            round(topic, 4),
            intents,
            None if level is None else round(level, 4),
            reason,
        )


def explain(coverage: Coverage, rules: CoverageRules) -> list[str]:
    """How the coverage check judged a question, line by line, for clinic staff (`ask --explain`)."""
    unknown = coverage.unknown_words()
    topics = sorted((word for word in coverage.words if word.topic >= rules.topic_share), key=lambda word: -word.topic)
    named = [word.text for word in coverage.words if word.known and word.weight >= rules.named_weight]
    level = "not measured (rebuild the index)" if coverage.level is None else f"{coverage.level:+.2f}"
    verdict = "covered" if coverage.covered else f"NOT covered ({coverage.reason})"
    return [
        f"coverage: {verdict}" + ("" if rules.enabled else " [the check is off: QA_COVERAGE_CHECK=false]"),
        f"  words no entry uses: {', '.join(unknown) if unknown else 'none'}; they carry "
        f"{coverage.unknown_share:.0%} of the question's weight (QA_COVERAGE_UNKNOWN_SHARE: {rules.unknown_share:.0%})",
        "  the FAQ's own topic words in it: "
        + (", ".join(f"{word.text} ({word.topic:.0%} of entries)" for word in topics) if topics else "none")
        + (f"; rare words the FAQ uses: {', '.join(named)}" if named else ""),
        f"  requests no entry's question mentions: {', '.join(coverage.intents) or 'none'}",
        f"  best match against questions on topics the FAQ lacks: {level} standard deviations "
        f"(QA_COVERAGE_LEVEL: {rules.level_margin:+.2f})",
    ]


# ---- build time: medical questions about topics the corpus lacks ----


@dataclass(frozen=True)
class _Reference:
    templates: dict[str, list[str]]
    topics: list[tuple[str, str]]


@functools.lru_cache(maxsize=1)
def _reference() -> _Reference:
    text = resources.files("qa_service").joinpath("data", REFERENCE_FILE).read_text(encoding="utf-8")
    templates: dict[str, list[str]] = {}
    topics: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition("|")
        kind, rest = kind.strip(), rest.strip()
        if kind.startswith("template "):
            templates.setdefault(kind.removeprefix("template ").strip(), []).append(rest)
        else:
            topics.append((kind, rest))
    return _Reference(templates, topics)


def uncovered_reference_questions(corpus: CorpusCoverage, per_topic: int = 3) -> list[str]:
    """Medical questions about the reference topics whose weightiest word the corpus never uses:
    ``per_topic`` shapes per topic, chosen by the topic's hash (the same questions every build)."""
    if corpus.english is None:
        return []
    reference = _reference()
    questions: list[str] = []
    for kind, topic in reference.topics:
        words = corpus.words(topic)
        if not words or max(words, key=lambda word: word.weight).known:
            continue
        shapes = reference.templates[kind]
        start = int(hashlib.sha256(topic.encode("utf-8")).hexdigest(), 16)
        picked = dict.fromkeys(shapes[(start + 7 * step) % len(shapes)] for step in range(per_topic))
        questions.extend(shape.replace("{}", topic) for shape in picked)
    return questions


def uncovered_statistics(tops: Sequence[SimilarityLevel]) -> dict[str, float]:
    """The level the uncovered reference questions reach (their best candidates' scores)."""
    scores = np.asarray([top.score for top in tops], dtype=np.float64)
    if not len(scores):
        return {"uncovered_count": 0}
    return {
        "uncovered_count": len(scores),
        "uncovered_mean": round(float(scores.mean()), 5),
        "uncovered_std": round(max(float(scores.std()), 1e-3), 5),
        "uncovered_p95": round(float(np.quantile(scores, 0.95)), 5),
    }
