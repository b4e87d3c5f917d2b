"""Which language a question is in, so questions the model cannot handle get an honest reply.

Uses py3langid (a small naive-Bayes identifier over byte n-grams, bundled model, numpy only) limited to
30 widely used languages. A question is refused only when the identifier gives the supported languages
together less than ``MAX_SUPPORTED_PROBABILITY``: on the ~1,200 English dev questions (many short,
misspelt or in capitals) the lowest such probability measured was 0.033, while whole-sentence
Spanish, French, German, Russian or Chinese questions score below 0.002. Very short foreign inputs
("hola") can pass; the answer threshold declines those anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

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
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(CANDIDATE_LANGUAGES))
                self._identifier = identifier
        return self._identifier

    def detect(self, text: str) -> str | None:
        """None when the text may well be in a supported language, else the likeliest other language."""
        if not self.supported:
            return None
        ranking = self._load().rank(text.lower())
        supported_probability = sum(p for code, p in ranking if code in self.supported)
        if supported_probability >= MAX_SUPPORTED_PROBABILITY:
            return None
        return str(ranking[0][0])
