"""The on-disk index: versioned build folders with a manifest, published atomically.

Layout of ``index_dir``::

    CURRENT                 name of the build being served (replaced atomically)
    builds/<build-id>/      manifest.json (written last), entries.json, rows.npz, vectors.faiss,
                            keywords.npz + keywords.vocab.json, model/ (when the model was fine-tuned)
    builds/.tmp-<id>/       a build in progress; never served, removed by the next build

A failed or killed build never touches CURRENT, so the previous index keeps serving. Older builds
are kept (``keep_builds``) so an operator can roll back. This is the only module that imports faiss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ValidationError

from qa_service.corpus import FaqEntry
from qa_service.errors import IndexMismatchError, IndexUnavailableError
from qa_service.keywords import KeywordIndex

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
CURRENT_FILE = "CURRENT"
BUILDS_DIR = "builds"
MANIFEST = "manifest.json"
ENTRIES = "entries.json"
ROWS = "rows.npz"
VECTORS = "vectors.faiss"
KEYWORDS = "keywords"
NEAR_DUPLICATES = "near_duplicates.json"
MODEL_DIR = "model"
_TMP_PREFIX = ".tmp-"


class IndexManifest(BaseModel):
    """What a build contains and how it was made; checked when the index is loaded."""

    format_version: int
    build_id: str
    model: str
    dimension: int
    metric: str
    index_type: str
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
    fine_tune: dict[str, Any] | None = None  # how the model in model/ was adapted; None: the base model
    calibration: dict[str, float] | None = None  # per-corpus statistics of the confidence model
    near_duplicate_pairs: int = 0  # details in near_duplicates.json
    near_duplicates_differing: int = 0

    def summary(self) -> dict[str, Any]:
        return self.model_dump(include={"build_id", "model", "dimension", "entry_count", "corpus_hash", "built_at"})


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
        vectors: Any,
        keywords: KeywordIndex | None = None,
        path: Path | None = None,
    ) -> None:
        self.manifest = manifest
        self.entries = list(entries)
        self.path = path
        self.row_entry = row_entry
        self.row_field = row_field
        self.keywords = keywords
        self._faiss = vectors
        # A zero-copy view of the flat index's vectors, for exact rescoring of candidates.
        total, dimension = int(vectors.ntotal), int(vectors.d)
        self.vectors: npt.NDArray[np.float32] = (
            faiss.rev_swig_ptr(vectors.get_xb(), total * dimension).reshape(total, dimension)
            if total
            else np.zeros((0, dimension), dtype=np.float32)
        )
        self._by_id = {entry.id: position for position, entry in enumerate(self.entries)}
        self._max_rows_per_entry = int(np.bincount(row_entry).max()) if len(row_entry) else 1

    @property
    def model_path(self) -> Path | None:
        """The fine-tuned model saved with this build, if any."""
        if self.path is None or self.manifest.fine_tune is None:
            return None
        return self.path / MODEL_DIR

    def entry(self, entry_id: str) -> FaqEntry | None:
        position = self._by_id.get(entry_id)
        return None if position is None else self.entries[position]

    def search(self, queries: npt.NDArray[np.float32], k: int) -> list[list[Hit]]:
        """The ``k`` best distinct entries per query vector, best first; an entry scores its best row."""
        if queries.ndim != 2 or queries.shape[1] != self.manifest.dimension:
            raise ValueError(f"query vectors must have shape (n, {self.manifest.dimension})")
        total = int(self._faiss.ntotal)
        if total == 0:
            return [[] for _ in range(len(queries))]
        rows = min(total, k * self._max_rows_per_entry + 8)
        scores, ids = self._faiss.search(np.ascontiguousarray(queries, dtype=np.float32), rows)
        results = []
        for query_scores, query_ids in zip(scores, ids, strict=True):
            best: dict[int, Hit] = {}
            for score, row in zip(query_scores, query_ids, strict=True):
                if row < 0:
                    continue
                entry = int(self.row_entry[row])
                if entry not in best:  # rows arrive best first
                    best[entry] = Hit(entry, float(score), FIELD_NAMES[int(self.row_field[row])])
                    if len(best) == k:
                        break
            results.append(list(best.values()))
        return results


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
    fine_tune: dict[str, Any] | None = None
    save_model: Callable[[Path], None] | None = None  # writes the fine-tuned model into a folder
    calibration: dict[str, float] | None = None
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)


def _manifest_for(content: BuildContent, *, build_id: str, files: dict[str, str]) -> IndexManifest:
    return IndexManifest(
        format_version=FORMAT_VERSION,
        build_id=build_id,
        model=content.model,
        dimension=int(content.vectors.shape[1]),
        metric="cosine",
        index_type="flat",
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
        fine_tune=content.fine_tune,
        calibration=content.calibration,
        near_duplicate_pairs=len(content.near_duplicates),
        near_duplicates_differing=sum(1 for pair in content.near_duplicates if pair.get("answers_differ")),
    )


def _make_faiss_index(vectors: npt.NDArray[np.float32]) -> Any:
    index = faiss.IndexFlatIP(vectors.shape[1])
    if len(vectors):
        index.add(vectors)
    return index


def publish_build(index_dir: Path, content: BuildContent, *, keep_builds: int = 3) -> IndexManifest:
    """Write a build into a temporary folder, then make it current with atomic renames."""
    builds = index_dir / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(builds)
    build_id = new_build_id()
    tmp = builds / f"{_TMP_PREFIX}{build_id}"
    tmp.mkdir()
    try:
        (tmp / ENTRIES).write_text(
            json.dumps([entry.model_dump(mode="json") for entry in content.entries], ensure_ascii=False),
            encoding="utf-8",
        )
        with (tmp / ROWS).open("wb") as handle:
            np.savez(handle, entry=content.row_entry, field=content.row_field)
        faiss.write_index(_make_faiss_index(content.vectors), str(tmp / VECTORS))
        (tmp / NEAR_DUPLICATES).write_text(json.dumps(content.near_duplicates, indent=1), encoding="utf-8")
        names = [ENTRIES, ROWS, VECTORS, NEAR_DUPLICATES]
        if content.keywords is not None:
            names += content.keywords.save(tmp, KEYWORDS)
        if content.save_model is not None:
            content.save_model(tmp / MODEL_DIR)
            names += sorted(str(path.relative_to(tmp)) for path in (tmp / MODEL_DIR).rglob("*") if path.is_file())
        files = {name: _sha256(tmp / name) for name in names}
        manifest = _manifest_for(content, build_id=build_id, files=files)
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


def current_build_id(index_dir: Path) -> str:
    pointer = index_dir / CURRENT_FILE
    try:
        build_id = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexUnavailableError(f"{index_dir}: no index has been built yet; run `qa-service build`") from None
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
    try:
        manifest = IndexManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexUnavailableError(f"{build_dir}: incomplete build (no {MANIFEST})") from None
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
        entries = [FaqEntry.model_validate(raw) for raw in json.loads((build_dir / ENTRIES).read_text("utf-8"))]
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
    return FaqIndex(manifest, entries, row_entry, row_field, vectors, keywords, path=build_dir)


def build_in_memory(content: BuildContent) -> FaqIndex:
    """An index that is never written (evaluation runs): same search, no files."""
    manifest = _manifest_for(content, build_id="in-memory", files={})
    return FaqIndex(manifest, content.entries, content.row_entry, content.row_field, _make_faiss_index(content.vectors))
