"""Which language a question is in, so questions the model cannot handle get an honest reply.

Uses py3langid (a small naive-Bayes identifier over byte n-grams, bundled model, numpy only) limited to
30 widely used languages. A question is refused only when the identifier gives the supported languages
together less than ``MAX_SUPPORTED_PROBABILITY``: on the ~1,200 English dev questions (many short,
misspelt or in capitals) the lowest such probability measured was 0.033, while whole-sentence
Spanish, French, German, Russian or Chinese questions score below 0.002. Very short foreign inputs
("hola") can pass; the answer threshold declines those anyway.

A batch of questions is scored together (``detect_many``): py3langid's own byte walk per text, then
one array pass for all of them instead of a dozen small numpy calls per text (~34 → ~17 µs per
question). The arithmetic is py3langid's (``LanguageIdentifier.rank`` with normalised
probabilities), summed in another order; a check at load compares the two on texts of several
languages and keeps py3langid's per-text path if they ever differ.
"""

from __future__ import annotations

import logging
import math
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

MAX_SUPPORTED_PROBABILITY = 0.02
CANDIDATE_LANGUAGES = (
    "en", "es", "fr", "de", "it", "pt", "nl", "pl", "ro", "sv", "da", "no", "fi", "cs", "hu",
    "tr", "ru", "uk", "el", "ar", "he", "fa", "hi", "zh", "ja", "ko", "vi", "id", "tl", "sw",
)  # fmt: skip
LANGUAGE_NAMES = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "pl": "Polish", "ro": "Romanian", "sv": "Swedish", "da": "Danish", "no": "Norwegian",
    "fi": "Finnish", "cs": "Czech", "hu": "Hungarian", "tr": "Turkish", "ru": "Russian", "uk": "Ukrainian",
    "el": "Greek", "ar": "Arabic", "he": "Hebrew", "fa": "Persian", "hi": "Hindi", "zh": "Chinese",
    "ja": "Japanese", "ko": "Korean", "vi": "Vietnamese", "id": "Indonesian", "tl": "Tagalog", "sw": "Swahili",
}  # fmt: skip
# Texts the load-time check scores both ways: English of several lengths, other languages, no features.
_CHECK_TEXTS = (
    "how long does a back spasm last?",
    "Is it safe to use heat, ice or both on a back spasm, and when should I see a doctor instead?",
    "¿Cuánto dura un espasmo de espalda?",
    "Wie lange dauert ein Rückenkrampf?",
    "Combien de temps dure un spasme du dos ?",
    "背中のけいれんはどのくらい続きますか",
    "Сколько длится спазм спины?",
    "???",
    "",
)
_CHECK_TOLERANCE = 1e-5  # largest difference in any language's probability


def language_list(codes: Sequence[str]) -> str:
    """'English', 'English and Spanish', 'English, Spanish and French'."""
    names = [LANGUAGE_NAMES.get(code, code) for code in codes]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class LanguageGuard:
    """Tells whether a question is in one of the supported languages. Loads its model on first use."""

    def __init__(self, supported: Sequence[str]) -> None:
        unknown = [code for code in supported if code not in CANDIDATE_LANGUAGES]
        if unknown:
            raise ValueError(f"unknown language code(s) {unknown}; known: {', '.join(CANDIDATE_LANGUAGES)}")
        self.supported = tuple(supported)
        self._identifier: Any = None
        self._batch: _BatchScorer | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(CANDIDATE_LANGUAGES))
                self._batch = _checked_batch_scorer(identifier)
                self._identifier = identifier
        return self._identifier

    def detect(self, text: str) -> str | None:
        """None when the text may well be in a supported language, else the likeliest other language."""
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[str | None]:
        """``detect`` for each text, scored together."""
        if not self.supported or not texts:
            return [None] * len(texts)
        identifier = self._load()
        lowered = [text.lower() for text in texts]
        if self._batch is not None:
            labels, probabilities = self._batch.labels, self._batch.probabilities(lowered)
        else:
            labels = list(dict.fromkeys(identifier.nb_classes))
            probabilities = np.array([[dict(identifier.rank(text))[label] for label in labels] for text in lowered])
        supported = [column for column, label in enumerate(labels) if label in self.supported]
        likely = (probabilities[:, supported].sum(axis=1) >= MAX_SUPPORTED_PROBABILITY).tolist()
        best = probabilities.argmax(axis=1).tolist()
        return [None if ok else str(labels[column]) for ok, column in zip(likely, best, strict=True)]


class _BatchScorer:
    """py3langid's normalised language probabilities for several texts at once (one row per text, one
    column per label of ``labels``), from the identifier's public model arrays."""

    def __init__(self, identifier: Any) -> None:
        from py3langid.langid import visit_counts

        self._visits = visit_counts
        self._table = np.asarray(identifier.nb_ptc)
        self._prior = np.asarray(identifier.nb_pc, dtype=np.float32)
        self._nextmove, self._output = identifier.tk_nextmove, identifier.tk_output
        self._rowbase = [row << 8 for row in identifier.tk_row]
        classes = list(identifier.nb_classes)
        self.labels = list(dict.fromkeys(classes))
        self._columns = [classes.index(label) for label in self.labels]  # aliases fold into the first column
        self._aliases = [(classes.index(c), i) for i, c in enumerate(classes) if classes.index(c) != i]

    def probabilities(self, texts: Sequence[str]) -> Any:
        """Texts already lower-cased, as ``LanguageGuard`` gives them to py3langid."""
        features: list[int] = []
        counts: list[int] = []
        starts: list[int] = []
        scored: list[int] = []
        sizes = np.ones(len(texts))
        for position, text in enumerate(texts):
            data = unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")
            sizes[position] = len(data) or 1
            visits = self._visits(self._nextmove, self._rowbase, self._output, data)
            if visits:
                starts.append(len(features))
                scored.append(position)
                features.extend(visits.keys())
                counts.extend(visits.values())
        scores = np.zeros((len(texts), len(self._prior)), dtype=np.float32)  # no features: uniform, as py3langid
        if scored:
            weighted = np.log1p(np.asarray(counts, dtype=np.float32))[:, None] * self._table[features]
            scores[scored] = np.add.reduceat(weighted, starts, axis=0) + self._prior
        scores *= (1.0 / np.sqrt(sizes)).astype(np.float32)[:, None]
        np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        for first, dupe in self._aliases:
            scores[:, first] += scores[:, dupe]
        return scores[:, self._columns]


def _checked_batch_scorer(identifier: Any) -> _BatchScorer | None:
    """A batch scorer if it gives py3langid's probabilities on the check texts, else None (logged)."""
    try:
        scorer = _BatchScorer(identifier)
        batched = scorer.probabilities([text.lower() for text in _CHECK_TEXTS])
    except (AttributeError, ImportError, TypeError, ValueError) as exc:
        logger.info("language identification text by text (no batch scorer: %s)", exc)
        return None
    for text, row in zip(_CHECK_TEXTS, batched, strict=True):
        expected = dict(identifier.rank(text.lower()))
        worst = max(abs(expected[label] - float(p)) for label, p in zip(scorer.labels, row, strict=True))
        if not math.isfinite(worst) or worst > _CHECK_TOLERANCE:
            logger.warning("language identification text by text: batch scores differ by %.2g", worst)
            return None
    return scorer
