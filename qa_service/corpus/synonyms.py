"""The clinic's vocabulary: words patients use for the terms its FAQ uses ("charley horse" for
"muscle cramp"), in ``corpus/synonyms.txt``.

One line per term, the FAQ's word first, then the patients' words::

    # comments and blank lines are ignored
    muscle cramp: charley horse, charlie horse
    muscle strain: pulled muscle, strained muscle

Both sides of a match are read in the FAQ's words: each build indexes the entries' texts with the
patients' words replaced by the FAQ's (for the vectors and the keywords), and each question is read
the same way before it is matched. Answers are never changed. A build records the terms in its
manifest, so the question side always uses the vocabulary the build was made with, and a change of the
file makes ``qa-service build --if-stale`` rebuild.

Built-in lay words (``data/lay_words.txt``: "jab" for "vaccine", "nits" for "head lice") are added to
the clinic's, each only where the corpus uses its FAQ term and the clinic's file does not list the
patient word (``vocabulary``; ``QA_LAY_WORDS=false`` leaves them out).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from pathlib import Path

from qa_service.corpus.importers.common import read_text
from qa_service.errors import CorpusError

SYNONYMS_FILE = "synonyms.txt"
LAY_WORDS_FILE = "lay_words.txt"  # in qa_service/data
_TERM = re.compile(r"^[\w][\w'’ .+/-]*$")
_MAX_TERM = 80


def _key(term: str) -> str:
    return " ".join(term.casefold().split())


@dataclass(frozen=True)
class Synonyms:
    """The FAQ's term -> the words patients use for it (all lower case, in file order)."""

    terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        variants = sorted((v for words in self.terms.values() for v in words), key=len, reverse=True)
        if not variants:
            return None
        alternatives = "|".join(r"\s+".join(re.escape(word) for word in variant.split()) for variant in variants)
        # a plural or possessive of the last word matches too ("charley horses", "charley horse's")
        return re.compile(rf"(?<![\w-])(?:{alternatives})(?:e?s|'s|’s)?(?![\w-])", re.IGNORECASE)

    @cached_property
    def _canonical(self) -> dict[str, str]:
        return {variant: term for term, words in self.terms.items() for variant in words}

    def canonical(self, text: str) -> str:
        """``text`` with every patient word replaced by the FAQ's term."""
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(lambda match: self._replacement(match[0]), text)

    def _replacement(self, found: str) -> str:
        """The FAQ's term for a matched patient word, keeping a plural or possessive ending."""
        key = _key(found)
        for suffix in ("", "'s", "’s", "es", "s"):
            variant = key[: len(key) - len(suffix)] if suffix else key
            if key.endswith(suffix) and variant in self._canonical:
                return self._canonical[variant] + suffix
        return found

    def as_dict(self) -> dict[str, list[str]]:
        return {term: list(words) for term, words in self.terms.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, list[str]] | None) -> Synonyms:
        return cls({term: tuple(words) for term, words in (data or {}).items()})

    def digest(self) -> str:
        text = "\n".join(f"{term}: {', '.join(words)}" for term, words in self.terms.items())
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def __bool__(self) -> bool:
        return bool(self.terms)


def parse_synonyms(text: str, *, path: Path, choices: bool = False) -> Synonyms:
    """Read a synonyms file; errors name the file and line. ``choices``: the FAQ's term may be several,
    "a | b" (kept as written, for ``vocabulary`` to choose from)."""
    terms: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}  # word -> "file:line" where it first appears

    def check(word: str, where: str) -> str:
        if not word:
            raise CorpusError(f"{where}: an empty term (two commas, or nothing before ':')")
        if len(word) > _MAX_TERM or not _TERM.match(word):
            raise CorpusError(f"{where}: {word!r} is not a term (letters, digits, spaces and ' . + / - only)")
        if word in seen:
            raise CorpusError(f"{where}: {word!r} is listed twice (first at {seen[word]})")
        seen[word] = where
        return word

    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        if ":" not in line:
            raise CorpusError(f"{where}: expected 'faq term: patient word, patient word', got {raw.strip()!r}")
        head, _, tail = line.partition(":")
        heads = [check(_key(part), where) for part in head.split("|")] if choices else [check(_key(head), where)]
        term = " | ".join(heads)
        if not tail.strip():
            raise CorpusError(f"{where}: {term!r} has no patient words after ':'")
        terms[term] = tuple(check(_key(word), where) for word in tail.split(","))
    return Synonyms(terms)


def load_synonyms(corpus_dir: Path) -> Synonyms:
    """The corpus folder's ``synonyms.txt``; none when there is no such file."""
    path = corpus_dir / SYNONYMS_FILE
    if not path.exists():
        return Synonyms()
    return parse_synonyms(read_text(path), path=path)


@cache
def lay_words() -> Synonyms:
    """The built-in lay words, FAQ terms with their choices (see ``data/lay_words.txt``)."""
    source = resources.files("qa_service").joinpath("data", LAY_WORDS_FILE)
    return parse_synonyms(source.read_text(encoding="utf-8"), path=Path(str(source)), choices=True)


def vocabulary(own: Synonyms, texts: Iterable[str], *, lay: bool = True) -> Synonyms:
    """The clinic's synonyms (``own``) with the built-in lay words that fit a corpus of ``texts``: a
    lay line whose first FAQ term the corpus uses, minus the patient words the clinic lists itself
    (as a term or a patient word) and the chosen term itself. The clinic's terms come first."""
    if not lay:
        return own
    corpus = " ".join(" ".join(text.casefold().split()) for text in texts)
    taken = {word for term, words in own.terms.items() for word in (term, *words)}
    terms = dict(own.terms)
    for choices, words in lay_words().terms.items():
        term = next((choice for choice in choices.split(" | ") if _used(choice, corpus)), None)
        if term is None:
            continue
        fresh = tuple(word for word in words if word not in taken and word != term)
        if fresh:
            terms[term] = (*terms[term], *fresh) if term in terms else fresh
            taken.update(fresh)
    return Synonyms(terms)


def _used(term: str, corpus: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", corpus) is not None
