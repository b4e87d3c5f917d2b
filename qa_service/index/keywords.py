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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from qa_service.index.arrays import ragged_positions
from qa_service.index.cachefiles import digest_array, read_arrays, remove_stale_temporaries, text_digest, write_arrays

K1 = 1.2
B = 0.75
QUERY_TERMS_CACHE = 1024

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


TERMS_VERSION = 1  # bump when tokenize(), stem() or STOPWORDS change: cached term counts go stale
TERMS_FILE = f"keyword-terms-v{TERMS_VERSION}.npz"


@dataclass(frozen=True)
class _Postings:
    """Term counts of a field's texts, one element per (text, term), in the order tokenising gives."""

    rows: npt.NDArray[np.int64]  # the text's position in the field
    terms: npt.NDArray[np.int64]  # the term, as a number of the TermCache
    counts: npt.NDArray[np.int64]


class TermCache:
    """Tokenised texts by text hash, so that a rebuild tokenises only the texts that changed (on
    44k medquad entries tokenising is most of the keyword index's build time).

    ``path`` None: a cache that remembers nothing between builds. An unreadable file is ignored."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.terms: list[str] = []
        self._term_ids: dict[str, int] = {}
        self._rows: dict[bytes, int] = {}  # text digest -> row of the stores below
        self._indptr: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)  # rows' elements, CSR-like
        self._ids: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._counts: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._new_ids: list[int] = []  # rows tokenised since the last _compact()
        self._new_counts: list[int] = []
        self._new_indptr: list[int] = []
        self._size = 0  # elements stored
        self._used: dict[int, None] = {}  # rows looked up by this build, in order
        self.hits = 0
        self.misses = 0
        arrays = read_arrays(path, ("digests", "indptr", "ids", "counts", "terms"))
        if arrays is not None:
            self.terms = [str(term) for term in arrays["terms"].tolist()]
            self._term_ids = {term: number for number, term in enumerate(self.terms)}
            self._rows = {bytes(digest): row for row, digest in enumerate(arrays["digests"])}
            self._indptr = arrays["indptr"].astype(np.int64)
            self._ids = arrays["ids"].astype(np.int64)
            self._counts = arrays["counts"].astype(np.int64)
            self._size = int(self._indptr[-1])

    def _row(self, text: str) -> int:
        digest = text_digest(text)
        row = self._rows.get(digest)
        if row is not None:
            self.hits += 1
            return row
        self.misses += 1
        counted = Counter(tokenize(text))
        for term in counted:
            number = self._term_ids.get(term)
            if number is None:
                number = self._term_ids[term] = len(self.terms)
                self.terms.append(term)
            self._new_ids.append(number)
        self._new_counts.extend(counted.values())
        self._size += len(counted)
        self._new_indptr.append(self._size)
        row = self._rows[digest] = len(self._rows)
        return row

    def postings(self, texts: Sequence[str]) -> _Postings:
        rows = np.asarray([self._row(text) for text in texts], dtype=np.int64)
        self._used.update(dict.fromkeys(rows.tolist()))
        self._compact()
        return _gather(self._indptr, self._ids, self._counts, rows)

    def _compact(self) -> None:
        if self._new_indptr:
            self._indptr = np.concatenate([self._indptr, np.asarray(self._new_indptr, dtype=np.int64)])
            self._ids = np.concatenate([self._ids, np.asarray(self._new_ids, dtype=np.int64)])
            self._counts = np.concatenate([self._counts, np.asarray(self._new_counts, dtype=np.int64)])
            self._new_ids, self._new_counts, self._new_indptr = [], [], []

    def save(self) -> None:
        """Keep the texts this build looked up (nothing else) for the next one."""
        if self.path is None:
            return
        self._compact()
        by_row = {row: digest for digest, row in self._rows.items()}
        rows = np.asarray(list(self._used), dtype=np.int64)
        kept = _gather(self._indptr, self._ids, self._counts, rows)
        used_terms, ids = np.unique(kept.terms, return_inverse=True)
        lengths = np.bincount(kept.rows, minlength=len(rows))
        write_arrays(
            self.path,
            {
                "digests": digest_array([by_row[row] for row in rows.tolist()]),
                "indptr": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                "ids": ids.astype(np.int32),
                "counts": kept.counts.astype(np.int32),
                "terms": np.asarray([self.terms[term] for term in used_terms.tolist()], dtype=str),
            },
        )
        remove_stale_temporaries(self.path.parent)


def _gather(
    indptr: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
) -> _Postings:
    """The elements of ``rows`` (a ragged gather), numbered 0..len(rows)-1 in the result."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    positions = ragged_positions(starts, lengths)
    return _Postings(np.repeat(np.arange(len(rows), dtype=np.int64), lengths), ids[positions], counts[positions])


def _bm25_matrix(
    postings: _Postings, terms: npt.NDArray[np.int64], n_docs: int, width: int, seen: int
) -> tuple[sp.csc_matrix, npt.NDArray[np.float32]]:
    """BM25 weights of one field; ``terms`` are the columns. IDF covers the first ``seen`` columns
    (the terms of this field and the ones before it) and is 0 after them."""
    row_index = postings.rows
    tf = postings.counts.astype(np.float32)
    lengths = np.bincount(row_index, weights=postings.counts, minlength=n_docs).astype(np.float32)
    document_frequency = np.bincount(terms, minlength=seen).astype(np.float32)
    idf = np.log1p((n_docs - document_frequency + 0.5) / (document_frequency + 0.5))
    average = float(lengths.mean()) if n_docs and lengths.mean() > 0 else 1.0
    weight = tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[row_index] / average)) * idf[terms]
    matrix = sp.csc_matrix((weight, (row_index, terms)), shape=(n_docs, width), dtype=np.float32)
    return matrix, np.pad(idf.astype(np.float32), (0, width - seen))


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
        if any(f.shape[1] != width for f in fields) or any(len(values) != width for values in idf):
            raise ValueError("keyword fields and IDF must have one column per vocabulary term")
        self.fields = [f.tocsc() for f in fields]
        self.idf = list(idf)
        size = self.size
        self._unknown_idf = float(np.log1p((size + 0.5) / 0.5)) if size else 1.0
        self._corrector: SpellingCorrector | None = None  # built on first use (a build rarely needs it)
        self._remembered_terms = functools.lru_cache(maxsize=QUERY_TERMS_CACHE)(self._query_terms)

    @classmethod
    def build(cls, field_texts: Sequence[Sequence[str]], cache: TermCache | None = None) -> KeywordIndex:
        """``field_texts[f][i]`` is field f's text of entry i. With a ``cache``, texts tokenised by an
        earlier build are not tokenised again; the index is the same either way."""
        cache = cache or TermCache()
        postings = [cache.postings(texts) for texts in field_texts]
        # Columns numbered by first use, field after field, text after text: a deterministic vocabulary
        # that does not depend on what the cache held.
        everything = np.concatenate([p.terms for p in postings]) if postings else np.zeros(0, np.int64)
        # each term's first use, without sorting millions of uses (44k entries: 0.03 s, not 0.5 s)
        first = np.full(len(cache.terms), len(everything), dtype=np.int64)
        np.minimum.at(first, everything, np.arange(len(everything), dtype=np.int64))
        used = np.flatnonzero(first < len(everything))
        order = used[np.argsort(first[used], kind="stable")]
        column = np.full(len(cache.terms), -1, dtype=np.int64)
        column[order] = np.arange(len(order), dtype=np.int64)
        vocab = {cache.terms[term]: number for number, term in enumerate(order.tolist())}
        built, seen = [], 0
        for field_postings, texts in zip(postings, field_texts, strict=True):
            terms = column[field_postings.terms]
            seen = max(seen, int(terms.max()) + 1 if len(terms) else 0)
            built.append(_bm25_matrix(field_postings, terms, len(texts), len(vocab), seen))
        return cls(vocab, [matrix for matrix, _ in built], [idf for _, idf in built])

    def corrector(self) -> SpellingCorrector:
        """The spelling corrector of this vocabulary (0.5 s to make for 44k entries: made once, when
        first needed; ``load`` makes it at once, so a service's first question does not wait)."""
        if self._corrector is None:
            self._corrector = SpellingCorrector(self.vocab, self.idf[-1] if self.idf else np.zeros(0, np.float32))
        return self._corrector

    @property
    def size(self) -> int:
        return int(self.fields[0].shape[0]) if self.fields else 0

    def query_terms(self, query: str) -> frozenset[str]:
        """The question's terms, misspelt words replaced by the corpus word one edit away
        (remembered for the last QUERY_TERMS_CACHE questions: scoring and ``known_share`` both ask)."""
        return self._remembered_terms(query)

    def _query_terms(self, query: str) -> frozenset[str]:
        corrector = self.corrector()
        return frozenset(corrector.correct(term) or term for term in tokenize(query))

    def known_share(self, query: str) -> float:
        """The share of the question's words that the corpus uses at all (0..1; 0 with no words).

        Unweighted on purpose: in a one-topic FAQ the topic words are in every entry and carry no IDF,
        yet a question whose words the FAQ never uses ("migraines", "cholesterol") is a different topic."""
        terms = self.query_terms(query)
        return sum(term in self.vocab for term in terms) / len(terms) if terms else 0.0

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """Mean over fields of the BM25 score divided by the query's total IDF (0..1)."""
        row: npt.NDArray[np.float32] = self.scores_many([query])[0]
        return row

    def scores_many(self, queries: Sequence[str]) -> npt.NDArray[np.float32]:
        """``scores`` of several queries, one row each. Query by query: one row's sums stay in
        cache, where a single pass over all queries' cells was 3.5x slower at 44k entries."""
        total = np.zeros((len(queries), self.size), dtype=np.float32)
        for row, query in zip(total, queries, strict=True):
            self._add_scores(row, query)
        total /= np.float32(len(self.fields))
        return total

    def _add_scores(self, total: npt.NDArray[np.float32], query: str) -> None:
        terms = self.query_terms(query)
        if not terms or not self.size:
            return
        ids = sorted(self.vocab[term] for term in terms if term in self.vocab)
        unknown = len(terms) - len(ids)
        for matrix, idf in zip(self.fields, self.idf, strict=True):
            possible = float(idf[ids].sum()) + unknown * self._unknown_idf
            if ids and possible > 0:
                columns = np.asarray(ids, dtype=np.int64)
                starts = matrix.indptr[columns].astype(np.int64)
                found = ragged_positions(starts, matrix.indptr[columns + 1] - starts)  # the columns' entries
                field_scores = np.bincount(matrix.indices[found], matrix.data[found], minlength=self.size)
                total += np.minimum(field_scores.astype(np.float32) / possible, 1.0)

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
        index = cls(vocab, fields, idf)
        index.corrector()  # made now, at load time
        return index
