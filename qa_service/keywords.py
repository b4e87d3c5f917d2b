"""Keyword retrieval: BM25 over each entry's question (+ alternates) and its question + answer.

A sparse matrix of precomputed BM25 term weights per field, so scoring a query is a column sum
(milliseconds for tens of thousands of entries). Complements the dense vectors on rare words:
drug and condition names, numbers, words the embedding model splits into pieces.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

K1 = 1.2
B = 0.75

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "i",
        "you",
        "my",
        "your",
        "me",
        "we",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "what",
        "how",
        "why",
        "when",
        "which",
        "who",
        "whom",
        "can",
        "could",
        "should",
        "would",
        "will",
        "with",
        "at",
        "by",
        "from",
        "as",
        "about",
        "have",
        "has",
        "had",
        "there",
        "their",
        "they",
        "them",
        "so",
        "if",
        "not",
        "no",
        "but",
        "any",
        "some",
        "into",
        "than",
        "then",
        "also",
        "just",
        "very",
        "get",
        "got",
        "im",
        "ive",
        "dont",
        "doesnt",
        "",
    }
)


@functools.lru_cache(maxsize=1 << 17)
def stem(word: str) -> str:
    """A light, predictable suffix strip so 'spasms'/'spasm' and 'stretches'/'stretch' meet."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-free word stems without stop words."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [stem(word) for word in _WORD.findall(ascii_text) if word not in STOPWORDS]


def _bm25_matrix(texts: Sequence[str], vocab: dict[str, int]) -> tuple[sp.csc_matrix, npt.NDArray[np.float32]]:
    rows: list[int] = []
    cols: list[int] = []
    counts: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.float32)
    for row, text in enumerate(texts):
        terms = Counter(tokenize(text))
        lengths[row] = sum(terms.values())
        for term, count in terms.items():
            rows.append(row)
            cols.append(vocab.setdefault(term, len(vocab)))
            counts.append(count)
    n_docs = len(texts)
    row_index = np.asarray(rows, dtype=np.int64)
    col_index = np.asarray(cols, dtype=np.int64)
    tf = np.asarray(counts, dtype=np.float32)
    document_frequency = np.bincount(col_index, minlength=len(vocab)).astype(np.float32)
    idf = np.log1p((n_docs - document_frequency + 0.5) / (document_frequency + 0.5))
    average = float(lengths.mean()) if n_docs and lengths.mean() > 0 else 1.0
    weight = tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[row_index] / average)) * idf[col_index]
    matrix = sp.csc_matrix((weight, (row_index, col_index)), shape=(n_docs, len(vocab)), dtype=np.float32)
    return matrix, idf.astype(np.float32)


MIN_CORRECTED_LENGTH = 5  # shorter words are too easily "corrected" into another real word


class SpellingCorrector:
    """Maps a word the corpus never uses to a corpus word one edit away (a letter dropped, added,
    changed, or two swapped): 'streches' -> 'stretch', 'spazms' -> 'spasm'. Built from the keyword
    vocabulary; among several candidates the most common in the corpus wins."""

    def __init__(self, vocab: dict[str, int], rarity: npt.NDArray[np.float32]) -> None:
        self._vocab = vocab
        self._rarity = rarity
        self._deletes: dict[str, list[str]] = {}
        for term in vocab:
            if len(term) >= MIN_CORRECTED_LENGTH - 1 and not term.isdigit():
                for variant in self._variants(term):
                    self._deletes.setdefault(variant, []).append(term)

    @staticmethod
    def _variants(word: str) -> set[str]:
        return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}

    def correct(self, word: str) -> str | None:
        """The corpus word meant, or None when there is no single-edit match."""
        if word in self._vocab or len(word) < MIN_CORRECTED_LENGTH or word.isdigit():
            return None
        found = {term for variant in self._variants(word) for term in self._deletes.get(variant, ())}
        found = {term for term in found if one_edit(word, term)}
        if not found:
            return None
        return min(found, key=lambda term: (self._rarity[self._vocab[term]], term))


def one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance exactly 1 (a deletion, insertion, substitution or transposition)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


class KeywordIndex:
    """BM25 over two fields per entry.

    ``scores`` is absolute, not relative to the best entry: each field's BM25 score is divided by the
    sum of the query terms' IDF (a term the corpus never uses counts as the rarest), so 1.0 means the
    entry contains every word of the question and 0.2 that it shares only a fifth of the question's
    information. A question about things the FAQ never mentions gets low scores everywhere."""

    def __init__(self, vocab: dict[str, int], fields: list[sp.csc_matrix], idf: list[npt.NDArray[np.float32]]) -> None:
        self.vocab = vocab
        width = len(vocab)
        self.fields = [f.tocsc() if f.shape[1] == width else _pad_columns(f.tocsc(), width) for f in fields]
        self.idf = [np.pad(values, (0, width - len(values))) for values in idf]
        size = self.size
        self._unknown_idf = float(np.log1p((size + 0.5) / 0.5)) if size else 1.0
        self._corrector = SpellingCorrector(vocab, self.idf[-1] if self.idf else np.zeros(0, np.float32))

    @classmethod
    def build(cls, field_texts: Sequence[Sequence[str]]) -> KeywordIndex:
        """``field_texts[f][i]`` is field f's text of entry i."""
        vocab: dict[str, int] = {}
        built = [_bm25_matrix(texts, vocab) for texts in field_texts]
        return cls(vocab, [matrix for matrix, _ in built], [idf for _, idf in built])

    @property
    def size(self) -> int:
        return int(self.fields[0].shape[0]) if self.fields else 0

    def query_terms(self, query: str) -> set[str]:
        """The question's terms, misspelt words replaced by the corpus word one edit away."""
        terms = set()
        for term in tokenize(query):
            terms.add(self._corrector.correct(term) or term)
        return terms

    def known_share(self, query: str) -> float:
        """The share of the question's words that the corpus uses at all (0..1; 0 with no words).

        Unweighted on purpose: in a one-topic FAQ the topic words are in every entry and carry no IDF,
        yet a question whose words the FAQ never uses ("migraines", "cholesterol") is a different topic."""
        terms = self.query_terms(query)
        return sum(term in self.vocab for term in terms) / len(terms) if terms else 0.0

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """Mean over fields of the BM25 score divided by the query's total IDF (0..1)."""
        total = np.zeros(self.size, dtype=np.float32)
        terms = self.query_terms(query)
        if not terms or not self.size:
            return total
        ids = sorted(self.vocab[term] for term in terms if term in self.vocab)
        unknown = len(terms) - len(ids)
        for matrix, idf in zip(self.fields, self.idf, strict=True):
            possible = float(idf[ids].sum()) + unknown * self._unknown_idf
            if ids and possible > 0:
                field_scores = np.asarray(matrix[:, ids].sum(axis=1), dtype=np.float32).ravel()
                total += np.minimum(field_scores / possible, 1.0)
        return (total / np.float32(len(self.fields))).astype(np.float32, copy=False)

    def save(self, folder: Path, stem: str = "keywords") -> list[str]:
        """Write ``<stem>.npz`` and ``<stem>.vocab.json``; returns the file names."""
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        for number, matrix in enumerate(self.fields):
            arrays[f"data{number}"] = matrix.data
            arrays[f"indices{number}"] = matrix.indices
            arrays[f"indptr{number}"] = matrix.indptr
            arrays[f"shape{number}"] = np.asarray(matrix.shape, dtype=np.int64)
            arrays[f"idf{number}"] = self.idf[number]
        with (folder / f"{stem}.npz").open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        (folder / f"{stem}.vocab.json").write_text(json.dumps(self.vocab), encoding="utf-8")
        return [f"{stem}.npz", f"{stem}.vocab.json"]

    @classmethod
    def load(cls, folder: Path, stem: str = "keywords") -> KeywordIndex:
        vocab = json.loads((folder / f"{stem}.vocab.json").read_text(encoding="utf-8"))
        fields = []
        idf = []
        with np.load(folder / f"{stem}.npz", allow_pickle=False) as arrays:
            number = 0
            while f"data{number}" in arrays:
                shape = tuple(int(v) for v in arrays[f"shape{number}"])
                fields.append(
                    sp.csc_matrix(
                        (arrays[f"data{number}"], arrays[f"indices{number}"], arrays[f"indptr{number}"]), shape=shape
                    )
                )
                idf.append(arrays[f"idf{number}"])
                number += 1
        return cls(vocab, fields, idf)


def _pad_columns(matrix: sp.csc_matrix, width: int) -> sp.csc_matrix:
    padded = sp.csc_matrix(
        (
            matrix.data,
            matrix.indices,
            np.concatenate(
                [matrix.indptr, np.full(width - matrix.shape[1], matrix.indptr[-1], dtype=matrix.indptr.dtype)]
            ),
        ),
        shape=(matrix.shape[0], width),
    )
    return padded
