"""The on-disk index: versioned build folders with a manifest, published atomically.

Layout of ``index_dir``::

    CURRENT                 name of the build being served (replaced atomically)
    builds/<build-id>/      manifest.json (written last), entries.json, rows.npz, vectors.faiss,
                            keywords.npz + keywords.vocab.json, model/ (the model the build embedded with)
    builds/.tmp-<id>/       a build in progress; never served, removed by the next build

A failed or killed build never touches CURRENT, so the previous index keeps serving. Older builds
are kept (``keep_builds``) so an operator can roll back. This is the only module that imports faiss.

The vector index is chosen by the number of rows (vectors): up to ``EXACT_MAX_ROWS`` it is exact
(``faiss.IndexFlatIP``); above, approximate (``faiss.IndexHNSWFlat`` over inner product, with
``HNSW_M`` links per node, ``HNSW_EF_CONSTRUCTION`` and ``HNSW_EF_SEARCH``). The manifest records the
kind (``index_type``) and its parameters (``index_params``); the search parameters are applied from it
when a build is loaded. Both kinds keep the vectors in one flat array (the HNSW graph's storage), which
retrieval reads for exact rescoring and which gives exact ground truth without a second copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, TypeAdapter, ValidationError

from qa_service.corpus.entries import FaqEntry
from qa_service.errors import IndexMismatchError, IndexUnavailableError
from qa_service.index.arrays import first_of_each_group
from qa_service.index.keywords import KeywordIndex

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
CURRENT_FILE = "CURRENT"
BUILDS_DIR = "builds"
MANIFEST = "manifest.json"
ENTRIES = "entries.json"
ROWS = "rows.npz"
VECTORS = "vectors.faiss"
KEYWORDS = "keywords"
ENTRY_LIST = TypeAdapter(list[FaqEntry])  # entries.json: one fast (de)serialisation of the whole list
NEAR_DUPLICATES = "near_duplicates.json"
# Flat indexes up to this many rows rank a search's entries from every row's score (see
# FaqIndex.candidate_entries); larger ones keep faiss's search, whose threads the service controls.
SCORE_ALL_MAX_ROWS = 8192
MODEL_DIR = "model"
_TMP_PREFIX = ".tmp-"

# Up to this many rows the vector index is exact; above it, approximate (HNSW). The bundled corpus and
# medquad_liveqa (~60k rows) stay exact. Chosen by measurement (qa_service/tooling/scale.py, docs/benchmarks.md): exact
# single-query search costs ~0.1 ms per 1,000 rows of 384 dimensions on one core (~12 ms at the
# threshold); HNSW with these parameters answers in ~1.5 ms (p99 ~3 ms) at 1M rows of clustered
# (real-like) vectors with recall@10 ~0.99 against exact search, in ~1.9 GB.
EXACT_MAX_ROWS = 100_000
HNSW_M = 48  # graph links per node (96 on the bottom layer): ~400 bytes per row on top of the vectors
HNSW_EF_CONSTRUCTION = 200  # candidate list while building: better graph, slower build (~7 min at 1M)
HNSW_EF_SEARCH = 512  # candidate list while searching (at least the rows asked for): recall vs time
INDEX_KINDS = ("flat", "hnsw")
# Exact searches of at least this many queries at once take faiss's matrix-product (BLAS) path
# instead of its query-by-query loop: 200 questions against 60k rows in 0.16 s instead of 0.85 s (a
# build's off-topic calibration; docs/benchmarks.md, ninth session). faiss-cpu 1.15's own threshold
# (128,000 queries) never takes it. The service's micro-batches (QA_BATCH_MAX, 32 by default) stay
# below, so answering questions searches exactly as before.
BLAS_MIN_QUERIES = 64
faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES


class IndexManifest(BaseModel):
    """What a build contains and how it was made; checked when the index is loaded."""

    format_version: int
    build_id: str
    model: str
    dimension: int
    metric: str
    index_type: str  # "flat" (exact) or "hnsw" (approximate); see EXACT_MAX_ROWS
    entry_count: int
    vector_count: int
    vector_fields: list[str]
    corpus_hash: str
    built_at: str
    build_seconds: float
    excluded_ids: list[str]
    libraries: dict[str, str]
    files: dict[str, str]  # file name (model files as model/<name>) -> sha256
    keyword_fields: list[str] = []
    build_settings: dict[str, Any] = {}  # the settings that shaped this build (to tell when it is stale)
    fine_tune: dict[str, Any] | None = None  # how the model in model/ was adapted; None: it is the base model
    calibration: dict[str, float] | None = None  # per-corpus statistics of the confidence model
    near_duplicate_pairs: int = 0  # details in near_duplicates.json
    near_duplicates_differing: int = 0
    index_params: dict[str, int] = {}  # hnsw: M, ef_construction, ef_search (applied on load); flat: none
    encoder_precision: str = "float32"  # arithmetic the vectors were computed in (QA_ENCODER_PRECISION)
    model_weights: str | None = None  # hash of the configured model's files the build started from
    synonyms: dict[str, list[str]] = {}  # the clinic's vocabulary the build read its texts with (synonyms.txt)

    def summary(self) -> dict[str, Any]:
        return self.model_dump(include={"build_id", "model", "dimension", "entry_count", "corpus_hash", "built_at"})


def vector_index_kind(rows: int) -> str:
    """The vector index for ``rows`` vectors: "flat" (exact) up to EXACT_MAX_ROWS, else "hnsw"."""
    return "flat" if rows <= EXACT_MAX_ROWS else "hnsw"


class VectorIndex:
    """Row vectors and the faiss index that searches them by inner product (cosine on unit vectors).

    ``flat``: ``faiss.IndexFlatIP``, exact. ``hnsw``: ``faiss.IndexHNSWFlat``, approximate; its storage is
    an exact flat index over the same vectors. Either way ``vectors`` is a zero-copy view of the
    stored vectors and ``search(..., exact=True)`` is an exhaustive search."""

    def __init__(self, index: Any, kind: str, params: Mapping[str, int] | None = None) -> None:
        params = dict(params or {})
        flat: Any
        if kind == "flat" and isinstance(index, faiss.IndexFlat):
            flat = index
        elif kind == "hnsw" and isinstance(index, faiss.IndexHNSWFlat):
            flat = faiss.downcast_index(index.storage)
            params.setdefault("M", int(index.hnsw.nb_neighbors(1)))  # type: ignore[attr-defined]  # in the SWIG bindings, not the stubs
            params.setdefault("ef_construction", int(index.hnsw.efConstruction))
            params.setdefault("ef_search", HNSW_EF_SEARCH)
            index.hnsw.efSearch = int(params["ef_search"])
        elif kind not in INDEX_KINDS:
            raise ValueError(f"unknown vector index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")
        else:
            raise ValueError(f"the vector file holds a {type(index).__name__}, not a {kind!r} index")
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError("the vector index does not use inner product")
        self.kind = kind
        self.params = params
        self.faiss_index = index
        self._flat = flat
        self._view: npt.NDArray[np.float32] | None = None

    @property
    def dimension(self) -> int:
        return int(self.faiss_index.d)

    def __len__(self) -> int:
        return int(self.faiss_index.ntotal)

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """The stored vectors, row by row (a view: valid until the next ``add``)."""
        if self._view is None:
            total, dimension = len(self), self.dimension
            self._view = (
                faiss.rev_swig_ptr(self._flat.get_xb(), total * dimension).reshape(total, dimension)
                if total
                else np.zeros((0, dimension), dtype=np.float32)
            )
        return self._view

    def add(self, vectors: npt.NDArray[np.float32]) -> None:
        """Append rows (float32 unit vectors); may be called in chunks to bound memory."""
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors must have shape (n, {self.dimension})")
        if len(vectors):
            self._view = None  # the storage may move
            self.faiss_index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(
        self, queries: npt.NDArray[np.float32], k: int, *, exact: bool = False
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Scores and row ids of the ``k`` best rows per query, best first (-1: fewer rows found)."""
        index = self._flat if exact else self.faiss_index
        scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def inner_products(self, queries: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Every query's score with every row (exact), one row per query. Query by query: numpy's
        matrix product of a whole batch starts OpenBLAS's thread pool, which then competes with the
        encoder's threads for the two cores."""
        vectors = self.vectors
        scores = np.empty((len(queries), len(vectors)), dtype=np.float32)
        for row, query in zip(scores, np.asarray(queries, dtype=np.float32), strict=True):
            np.matmul(vectors, query, out=row)
        return scores


def write_vector_index(index: VectorIndex, path: Path) -> None:
    """Write the faiss index (and only it: the kind and parameters are the caller's to keep)."""
    faiss.write_index(index.faiss_index, str(path))


def read_vector_index(path: Path, kind: str, params: Mapping[str, int] | None = None) -> VectorIndex:
    """A vector index written by ``write_vector_index``; ValueError if it is not of ``kind``."""
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise ValueError(f"{path}: not a readable faiss index: {exc}") from None
    return VectorIndex(index, kind, params)


def new_vector_index(dimension: int, rows: int, *, kind: str | None = None) -> VectorIndex:
    """An empty vector index of the kind suited to ``rows`` vectors (or of ``kind``)."""
    kind = kind or vector_index_kind(rows)
    if kind == "flat":
        return VectorIndex(faiss.IndexFlatIP(dimension), "flat")
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        params = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH}
        return VectorIndex(index, "hnsw", params)
    raise ValueError(f"unknown vector index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")


def make_vector_index(vectors: npt.NDArray[np.float32], *, kind: str | None = None) -> VectorIndex:
    """A vector index over ``vectors`` (rows), of the kind chosen by their number unless ``kind`` is given."""
    index = new_vector_index(int(vectors.shape[1]), len(vectors), kind=kind)
    index.add(vectors)
    return index


def search_threads() -> int:
    """Threads faiss may use for one search call (OpenMP; the service leaves the default: all cores)."""
    return int(faiss.omp_get_max_threads())


def set_search_threads(threads: int) -> None:
    """Threads faiss may use for searches made from the calling thread (OpenMP keeps this per thread)."""
    faiss.omp_set_num_threads(threads)


@dataclass(frozen=True)
class Hit:
    entry: int  # position in FaqIndex.entries
    score: float
    field: str  # which text matched best: question, alternate, qa


class FaqIndex:
    """Entries plus the vectors that find them; several vectors (rows) may point at one entry."""

    def __init__(
        self,
        manifest: IndexManifest,
        entries: Sequence[FaqEntry],
        row_entry: npt.NDArray[np.int32],
        row_field: npt.NDArray[np.int8],
        vectors: VectorIndex,
        keywords: KeywordIndex | None = None,
        path: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.entries = list(entries)
        self.path = path
        self.row_entry = row_entry
        self.row_field = row_field
        self.keywords = keywords
        self.vector_index = vectors
        # A zero-copy view of the stored vectors (any index kind), for exact rescoring of candidates.
        self.vectors: npt.NDArray[np.float32] = vectors.vectors
        self._by_id = {entry.id: position for position, entry in enumerate(self.entries)}
        self._max_rows_per_entry = int(np.bincount(row_entry).max()) if len(row_entry) else 1
        # Rows grouped by entry (in entry order), to score every entry of a small flat index at once.
        self._rows_by_entry = np.argsort(row_entry, kind="stable")
        grouped = row_entry[self._rows_by_entry]
        self._entry_groups = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if len(grouped) else grouped
        self._group_entry = grouped[self._entry_groups].astype(np.int64)

    @property
    def model_path(self) -> Path | None:
        """The model saved with this build (fine-tuned, or the base model it embedded with), if any:
        builds made before base models were kept have none."""
        if self.path is None or not any(name.startswith(f"{MODEL_DIR}/") for name in self.manifest.files):
            return None
        return self.path / MODEL_DIR

    def entry(self, entry_id: str) -> FaqEntry | None:
        position = self._by_id.get(entry_id)
        return None if position is None else self.entries[position]

    def search(self, queries: npt.NDArray[np.float32], k: int) -> list[list[Hit]]:
        """The ``k`` best distinct entries per query vector, best first; an entry scores its best row."""
        return [
            [
                Hit(entry, score, FIELD_NAMES[field])
                for entry, score, field in zip(
                    entries.tolist(), scores.tolist(), self.row_field[rows].tolist(), strict=True
                )
            ]
            for entries, scores, rows in self._best_rows(queries, k)
        ]

    def candidate_entries(self, queries: npt.NDArray[np.float32], k: int) -> list[npt.NDArray[np.int64]]:
        """What ``search`` finds, as entry positions only (no objects: the ranking rescores them anyway).

        A small flat (exact) index ranks its entries from every row's score: the same entries as its
        search, without faiss keeping ``k`` × rows-per-entry best rows in a heap per query (a batch of
        37 questions: 0.4 against 2.0 ms at 390 rows, 1.3 against 7.5 ms at 2,000). Equal scores at
        the k-th place may keep either entry, as with the search."""
        total = len(self.vector_index)
        if self.vector_index.kind != "flat" or not 0 < total <= SCORE_ALL_MAX_ROWS or k <= 0:
            return [entries for entries, _, _ in self._best_rows(queries, k)]
        self._check_queries(queries)
        scores = self.vector_index.inner_products(queries)
        best = np.maximum.reduceat(scores[:, self._rows_by_entry], self._entry_groups, axis=1)
        if k < best.shape[1]:
            top = np.sort(np.argpartition(-best, k - 1, axis=1)[:, :k], axis=1)
        else:
            top = np.broadcast_to(np.arange(best.shape[1]), best.shape)
        order = np.argsort(-np.take_along_axis(best, top, axis=1), axis=1, kind="stable")  # ties: earlier entry
        ranked = np.take_along_axis(top, order, axis=1)
        return list(self._group_entry[ranked])

    def _search_width(self, k: int) -> int:
        """Rows to search for so that ``k`` distinct entries are among them."""
        return k * self._max_rows_per_entry + 8

    def _check_queries(self, queries: npt.NDArray[np.float32]) -> None:
        if queries.ndim != 2 or queries.shape[1] != self.manifest.dimension:
            raise ValueError(f"query vectors must have shape (n, {self.manifest.dimension})")

    def _best_rows(
        self, queries: npt.NDArray[np.float32], k: int
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        """Per query: the ``k`` best distinct entries, their best row's score and that row, best first."""
        self._check_queries(queries)
        total = len(self.vector_index)
        empty = np.zeros(0, dtype=np.int64)
        if total == 0:
            return [(empty, np.zeros(0, dtype=np.float32), empty) for _ in range(len(queries))]
        width = min(total, self._search_width(k))
        scores, ids = self.vector_index.search(queries, width)
        count = len(queries)
        found = np.flatnonzero(ids.ravel() >= 0)  # an approximate search may find fewer rows
        rows, query = ids.ravel()[found], found // width
        entries = self.row_entry[rows]
        # Rows arrive best first, so an entry's first row in its query's list is its best. One pass for
        # all queries: first occurrence of each (query, entry) key, in row-major order (stable sort).
        _, first = np.unique(query * len(self.entries) + entries, return_index=True)
        first = np.sort(first)
        best = first[first_of_each_group(query[first], count, k)]
        bounds = np.searchsorted(query[best], np.arange(1, count))
        return list(
            zip(
                np.split(entries[best], bounds),
                np.split(scores.ravel()[found[best]], bounds),
                np.split(rows[best], bounds),
                strict=True,
            )
        )


FIELD_NAMES = ("question", "alternate", "qa")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("qa-service", "faiss-cpu", "numpy", "sentence-transformers", "torch", "transformers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def new_build_id() -> str:
    """Sortable by time (microseconds), unique thanks to a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class BuildContent:
    """Everything a build folder holds, before it is written."""

    entries: Sequence[FaqEntry]
    vectors: npt.NDArray[np.float32]
    row_entry: npt.NDArray[np.int32]
    row_field: npt.NDArray[np.int8]
    model: str
    vector_fields: list[str]
    corpus_hash: str
    excluded_ids: list[str]
    build_seconds: float
    keywords: KeywordIndex | None = None
    keyword_fields: list[str] = field(default_factory=list)
    build_settings: dict[str, Any] = field(default_factory=dict)
    encoder_precision: str = "float32"
    fine_tune: dict[str, Any] | None = None
    model_weights: str | None = None
    save_model: Callable[[Path], None] | None = None  # writes the fine-tuned model into a folder
    calibration: dict[str, float] | None = None
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)


def _manifest_for(
    content: BuildContent, *, build_id: str, files: dict[str, str], index_type: str, index_params: dict[str, int]
) -> IndexManifest:
    return IndexManifest(
        format_version=FORMAT_VERSION,
        build_id=build_id,
        model=content.model,
        dimension=int(content.vectors.shape[1]),
        metric="cosine",
        index_type=index_type,
        entry_count=len(content.entries),
        vector_count=len(content.vectors),
        vector_fields=content.vector_fields,
        corpus_hash=content.corpus_hash,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(content.build_seconds, 3),
        excluded_ids=content.excluded_ids,
        libraries=library_versions(),
        files=files,
        keyword_fields=content.keyword_fields,
        build_settings=content.build_settings,
        encoder_precision=content.encoder_precision,
        model_weights=content.model_weights,
        fine_tune=content.fine_tune,
        calibration=content.calibration,
        near_duplicate_pairs=len(content.near_duplicates),
        near_duplicates_differing=sum(1 for pair in content.near_duplicates if pair.get("answers_differ")),
        index_params=index_params,
        synonyms=content.synonyms,
    )


def _build_vector_index(content: BuildContent, kind: str | None = None) -> tuple[VectorIndex, BuildContent]:
    """The vector index for a build, and the content with its build time added (HNSW takes minutes at 1M)."""
    started = time.perf_counter()
    index = make_vector_index(content.vectors, kind=kind)
    seconds = time.perf_counter() - started
    return index, replace(content, build_seconds=content.build_seconds + seconds)


def publish_build(index_dir: Path, content: BuildContent, *, keep_builds: int = 3) -> IndexManifest:
    """Write a build into a temporary folder, then make it current with atomic renames."""
    builds = index_dir / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(builds)
    build_id = new_build_id()
    tmp = builds / f"{_TMP_PREFIX}{build_id}"
    tmp.mkdir()
    try:
        (tmp / ENTRIES).write_bytes(ENTRY_LIST.dump_json(list(content.entries)))
        with (tmp / ROWS).open("wb") as handle:
            np.savez(handle, entry=content.row_entry, field=content.row_field)
        vector_index, content = _build_vector_index(content)
        faiss.write_index(vector_index.faiss_index, str(tmp / VECTORS))
        index_type, index_params = vector_index.kind, vector_index.params
        del vector_index  # written: free its copy of the vectors
        (tmp / NEAR_DUPLICATES).write_text(json.dumps(content.near_duplicates, indent=1), encoding="utf-8")
        names = [ENTRIES, ROWS, VECTORS, NEAR_DUPLICATES]
        if content.keywords is not None:
            names += content.keywords.save(tmp, KEYWORDS)
        if content.save_model is not None:
            content.save_model(tmp / MODEL_DIR)
            names += sorted(str(path.relative_to(tmp)) for path in (tmp / MODEL_DIR).rglob("*") if path.is_file())
        files = {name: _sha256(tmp / name) for name in names}
        manifest = _manifest_for(
            content, build_id=build_id, files=files, index_type=index_type, index_params=index_params
        )
        for name in files:
            with (tmp / name).open("rb") as handle:
                os.fsync(handle.fileno())
        manifest_tmp = tmp / f"{MANIFEST}.tmp"
        manifest_tmp.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        os.replace(manifest_tmp, tmp / MANIFEST)  # the manifest last: a build without one is incomplete
        _fsync_dir(tmp)
        final = builds / build_id
        os.replace(tmp, final)
        _fsync_dir(builds)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    set_current_build(index_dir, build_id)
    _prune_builds(builds, keep=keep_builds, current=build_id)
    return manifest


def set_current_build(index_dir: Path, build_id: str) -> None:
    """Point CURRENT at a build (atomic replace; readers see the old or the new name, never half)."""
    if not (index_dir / BUILDS_DIR / build_id / MANIFEST).is_file():
        raise IndexUnavailableError(f"{index_dir / BUILDS_DIR / build_id}: no such complete build")
    tmp = index_dir / f".{CURRENT_FILE}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(build_id + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)


def _read_index_file(path: Path, missing: str) -> str:
    """A small text file of the index (CURRENT, a manifest); any failure is IndexUnavailableError."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IndexUnavailableError(missing) from None
    except NotADirectoryError:
        raise IndexUnavailableError(f"{path.parent}: is not a folder") from None
    except UnicodeDecodeError:
        raise IndexUnavailableError(f"{path}: unreadable (not UTF-8 text)") from None
    except OSError as exc:
        raise IndexUnavailableError(f"{path}: unreadable: {exc.strerror}") from None


def current_build_id(index_dir: Path) -> str:
    pointer = index_dir / CURRENT_FILE
    build_id = _read_index_file(pointer, f"{index_dir}: no index has been built yet; run `qa-service build`").strip()
    if not build_id or "/" in build_id or build_id.startswith("."):
        raise IndexUnavailableError(f"{pointer}: does not name a build ({build_id!r})")
    return build_id


def list_builds(index_dir: Path) -> list[str]:
    """Complete builds, oldest first."""
    builds = index_dir / BUILDS_DIR
    if not builds.is_dir():
        return []
    return sorted(
        path.name
        for path in builds.iterdir()
        if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()
    )


def _remove_stale_temporaries(builds: Path) -> None:
    for path in builds.iterdir():
        if path.name.startswith(_TMP_PREFIX):
            logger.info("removing unfinished build %s", path.name)
            shutil.rmtree(path, ignore_errors=True)


def _prune_builds(builds: Path, *, keep: int, current: str) -> None:
    complete = list_builds(builds.parent)
    for name in complete[: max(0, len(complete) - keep)]:
        if name != current:
            shutil.rmtree(builds / name, ignore_errors=True)


def read_manifest(build_dir: Path) -> IndexManifest:
    path = build_dir / MANIFEST
    text = _read_index_file(path, f"{build_dir}: incomplete build (no {MANIFEST})")
    try:
        manifest = IndexManifest.model_validate_json(text)
    except ValidationError as exc:
        raise IndexUnavailableError(f"{path}: unreadable manifest: {exc.errors()[0]['msg']}") from None
    if manifest.format_version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path}: index format {manifest.format_version} is not supported (expected {FORMAT_VERSION}); "
            "rebuild with `qa-service build`"
        )
    return manifest


def check_model(manifest: IndexManifest, *, model: str, dimension: int | None = None, where: str = "") -> None:
    """Refuse an index built with another model or vector size than the configured one."""
    if manifest.model != model:
        raise IndexMismatchError(
            f"{where or 'index'}: built with model {manifest.model!r} but the service is configured for "
            f"{model!r} (QA_MODEL); rebuild with `qa-service build` or set QA_MODEL={manifest.model}"
        )
    if dimension is not None and manifest.dimension != dimension:
        raise IndexMismatchError(
            f"{where or 'index'}: vectors have dimension {manifest.dimension} but model {model!r} "
            f"produces {dimension}; rebuild with `qa-service build`"
        )


def load_index(index_dir: Path, *, model: str, build_id: str | None = None) -> FaqIndex:
    """Load the current (or a named) build, verifying its manifest, checksums and model."""
    build_id = build_id or current_build_id(index_dir)
    build_dir = index_dir / BUILDS_DIR / build_id
    if not build_dir.is_dir():
        raise IndexUnavailableError(f"{build_dir}: the build named by {CURRENT_FILE} does not exist")
    manifest = read_manifest(build_dir)
    check_model(manifest, model=model, where=str(build_dir))
    for name, expected in manifest.files.items():
        path = build_dir / name
        if not path.is_file():
            raise IndexUnavailableError(f"{path}: missing from the build")
        if _sha256(path) != expected:
            raise IndexUnavailableError(f"{path}: checksum mismatch; the build is corrupt, rebuild or roll back")
    try:
        entries = ENTRY_LIST.validate_json((build_dir / ENTRIES).read_bytes())
        with np.load(build_dir / ROWS, allow_pickle=False) as rows:
            row_entry = rows["entry"].astype(np.int32)
            row_field = rows["field"].astype(np.int8)
        vectors = faiss.read_index(str(build_dir / VECTORS))
        keywords = KeywordIndex.load(build_dir, KEYWORDS) if manifest.keyword_fields else None
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise IndexUnavailableError(f"{build_dir}: cannot read the build: {exc}") from None
    if vectors.ntotal != manifest.vector_count or vectors.d != manifest.dimension:
        raise IndexUnavailableError(f"{build_dir}: vectors do not match the manifest; rebuild")
    if len(entries) != manifest.entry_count or len(row_entry) != manifest.vector_count:
        raise IndexUnavailableError(f"{build_dir}: entries do not match the manifest; rebuild")
    if keywords is not None and keywords.size != len(entries):
        raise IndexUnavailableError(f"{build_dir}: keyword index does not match the entries; rebuild")
    try:
        vector_index = VectorIndex(vectors, manifest.index_type, manifest.index_params)
    except ValueError as exc:
        raise IndexUnavailableError(f"{build_dir}: {exc}; rebuild") from None
    return FaqIndex(manifest, entries, row_entry, row_field, vector_index, keywords, path=build_dir)


def build_in_memory(content: BuildContent, *, kind: str | None = None) -> FaqIndex:
    """An index that is never written (evaluation runs): the same search as served, no files.
    ``kind`` overrides the vector index chosen by size (e.g. "flat" for a few exact searches without
    an HNSW build)."""
    vectors, content = _build_vector_index(content, kind)
    manifest = _manifest_for(
        content, build_id="in-memory", files={}, index_type=vectors.kind, index_params=vectors.params
    )
    return FaqIndex(manifest, content.entries, content.row_entry, content.row_field, vectors, content.keywords)
