"""Keeping a long-running server's memory flat.

glibc's malloc raises its mmap threshold each time a large block is freed, so that later large
blocks (the encoder's activations for batches of varied shapes) come from the heap instead of
fresh mappings; the heap then fragments and never shrinks. Measured with ``qa-service bench
--load 6000 --concurrency 64`` and the cache off: resident memory +19.4% over the run with the
default, +1.6% with the threshold fixed (BENCHMARKS.md). Fixing it (at glibc's own initial value,
128 KiB) keeps large blocks in mappings that go back to the system when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024


def fix_malloc_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process; False where there is no glibc, or when the
    operator set ``MALLOC_MMAP_THRESHOLD_`` themselves (theirs stands)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl or macOS)
        return False
    done = bool(mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(threshold)))
    if not done:
        logger.warning("could not fix malloc's mmap threshold; memory may grow under load")
    return done
