"""Build caches on disk (``<index_dir>/cache/``): texts keyed by their hash, arrays in ``.npz`` files
written atomically. A cache is an optimisation only: an unreadable file is ignored, never fatal."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

CACHE_DIR = "cache"
DIGEST_BYTES = 32


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def digest_array(digests: list[bytes]) -> npt.NDArray[np.uint8]:
    return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), DIGEST_BYTES)


def read_arrays(path: Path | None, names: tuple[str, ...]) -> dict[str, npt.NDArray[Any]] | None:
    """The named arrays of an .npz file, or None (logged) when it is missing or unreadable."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in names}
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring unreadable cache %s: %s", path, exc)
        return None
    digests = arrays.get("digests")
    if digests is not None and (digests.ndim != 2 or digests.shape[1] != DIGEST_BYTES):
        logger.warning("ignoring cache %s: unexpected digests", path)
        return None
    return arrays


def write_arrays(path: Path, arrays: Mapping[str, npt.NDArray[Any]]) -> bool:
    """Write an .npz atomically (a reader sees the old file or the new one); False, logged, on failure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)
    except OSError as exc:  # the build itself is fine; the next one just does more work
        logger.warning("could not write the cache %s: %s", path, exc)
        return False
    return True


def remove_stale_temporaries(folder: Path, older_than: float = 3600) -> None:
    """Temporary files left by a killed build (an hour is far longer than any save)."""
    for stale in folder.glob(".tmp-*"):
        try:
            if time.time() - stale.stat().st_mtime > older_than:
                stale.unlink(missing_ok=True)
        except OSError:
            pass
