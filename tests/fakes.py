"""A deterministic stand-in for the embedding model, for fast unit tests.

Each word is hashed to a few signed buckets, so texts sharing words get similar vectors; no torch."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from qa_service.model.embedder import Vectors


class HashingEmbedder:
    def __init__(self, dimension: int = 256, name: str = "test/hashing-embedder") -> None:
        self._dimension = dimension
        self._name = name
        self.weights_digest: str | None = None  # like a hub model's: identified by its name
        self.loads = 0
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def precision(self) -> str:
        return "float32"

    def load(self) -> None:
        self.loads += 1

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            for i in range(3):
                bucket = int.from_bytes(digest[4 * i : 4 * i + 4], "little") % self._dimension
                vector[bucket] += 1.0 if digest[20 + i] % 2 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0:
            vector[0] = 1.0
            return vector
        return vector / norm

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> Vectors:
        self.calls += 1
        rows = [self._vector(text) for text in texts]
        if on_batch is not None and texts:
            on_batch(len(texts))
        if not rows:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.vstack(rows).astype(np.float32)
