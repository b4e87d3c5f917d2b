"""An embedding cache for builds: texts already embedded by the same model are not embedded again.

A rebuild after editing a few entries re-embeds only the changed texts. Vectors are keyed by the
SHA-256 of the text, in one file per model identity (``model_key``): the base model's name, or for
a fine-tuned model the hash of exactly what it was trained on (see qa_service.build.finetune), plus the library
versions that could change its output. The cache is an optimisation only: a missing, unreadable or
mismatched file is ignored (and rebuilt); it never changes what a build contains.

Layout: ``<index_dir>/cache/embeddings-<key>.npz`` holding ``digests`` (n x 32 bytes) and
``vectors`` (n x dimension, float32). Written atomically; only the newest few model files are kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from qa_service.index.cachefiles import (
    CACHE_DIR,
    digest_array,
    read_arrays,
    remove_stale_temporaries,
    text_digest,
    write_arrays,
)
from qa_service.model.embedder import Embedder

__all__ = ["CACHE_DIR", "EmbeddingCache", "model_key"]

logger = logging.getLogger(__name__)

KEEP_MODEL_FILES = 3


def model_key(*parts: object) -> str:
    """A short stable key for a model identity made of ``parts``."""
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:24]


class EmbeddingCache:
    """Vectors of texts by text hash, for one model identity: one array of vectors and each text
    hash's row in it, so that the 60k vectors of a 44k-entry build are gathered and written as whole
    arrays, not row by row."""

    def __init__(self, folder: Path | None, key: str, dimension: int) -> None:
        """``folder`` None: a cache that remembers nothing between builds (e.g. evaluation runs)."""
        self.folder = folder
        self.key = key
        self.dimension = dimension
        self._vectors: npt.NDArray[np.float32] = np.zeros((0, dimension), dtype=np.float32)
        self._row: dict[bytes, int] = {}
        self.hits = 0
        self.misses = 0
        self.used: set[bytes] = set()  # digests of the texts encode() was asked for
        self._as_read = False  # holds exactly what its file holds (nothing added, nothing listed twice)
        if folder is not None:
            self._read()

    @property
    def path(self) -> Path | None:
        return None if self.folder is None else self.folder / f"embeddings-{self.key}.npz"

    def _read(self) -> None:
        arrays = read_arrays(self.path, ("digests", "vectors"))
        if arrays is None:
            return
        digests, vectors = arrays["digests"], arrays["vectors"]
        if vectors.shape != (len(digests), self.dimension):
            logger.warning("ignoring embedding cache %s: vectors of another shape", self.path)
            return
        raw, size = np.ascontiguousarray(digests).tobytes(), digests.shape[1]
        self._row = {raw[start : start + size]: row for row, start in enumerate(range(0, len(raw), size))}
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(self._row) != len(self._vectors):  # a digest listed twice: its last row counts, as before
            logger.warning("embedding cache %s lists some texts twice", self.path)
        else:
            self._as_read = True

    def encode(
        self,
        encoder: Embedder,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ) -> npt.NDArray[np.float32]:
        """Vectors of ``texts``: cached ones looked up, the others embedded (and remembered)."""
        digests = [text_digest(text) for text in texts]
        self.used.update(digests)
        missing: dict[bytes, str] = {}
        for digest, text in zip(digests, texts, strict=True):
            if digest not in self._row:
                missing.setdefault(digest, text)
        self.hits += len(texts) - sum(1 for digest in digests if digest in missing)
        self.misses += len(missing)
        if on_batch is not None and len(texts) > len(missing):
            on_batch(len(texts) - len(missing))  # progress counts the texts found in the cache too
        if missing:
            fresh = encoder.encode(list(missing.values()), batch_size=batch_size, on_batch=on_batch)
            start = len(self._vectors)
            self._vectors = np.concatenate([self._vectors, np.asarray(fresh, dtype=np.float32)])
            self._row.update((digest, start + offset) for offset, digest in enumerate(missing))
            self._as_read = False
        rows = np.fromiter((self._row[digest] for digest in digests), dtype=np.int64, count=len(digests))
        return self._vectors[rows]  # a new contiguous array (empty for no texts)

    def save(self, keep: Sequence[str] | None = None, *, only_used: bool = False) -> None:
        """Write the cache atomically and prune old model files. It keeps the vectors of ``keep`` when
        given, of the texts ``encode`` was asked for when ``only_used``, else all it holds."""
        path = self.path
        if path is None or self.folder is None:
            return
        wanted = {text_digest(text) for text in keep} if keep is not None else self.used if only_used else None
        kept = self._row if wanted is None else {d: row for d, row in self._row.items() if d in wanted}
        if self._as_read and len(kept) == len(self._row):  # the file already holds exactly these vectors
            try:
                os.utime(path)  # not written again (44k entries: 92 MB), only marked as used, for _prune
                return
            except OSError:  # removed meanwhile: written as usual
                pass
        rows = np.fromiter(kept.values(), dtype=np.int64, count=len(kept))
        if write_arrays(path, {"digests": digest_array(list(kept)), "vectors": self._vectors[rows]}):
            self._prune()

    def _prune(self) -> None:
        assert self.folder is not None
        files = sorted(self.folder.glob("embeddings-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[KEEP_MODEL_FILES:]:
            old.unlink(missing_ok=True)
        remove_stale_temporaries(self.folder)
