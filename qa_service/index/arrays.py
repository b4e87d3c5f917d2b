"""Small numpy helpers shared by the index code."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def ragged_positions(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Positions ``starts[0] .. starts[0]+lengths[0]-1, starts[1] ..`` in one array: the elements of
    several slices of a flat array (CSR rows, an entry's vector rows) gathered without a Python loop."""
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths
    positions: npt.NDArray[np.int64] = np.arange(total, dtype=np.int64) + np.repeat(starts - before, lengths)
    return positions


def first_of_each_group(groups: npt.NDArray[np.int64], count: int, k: int) -> npt.NDArray[np.bool_]:
    """For ``groups``, sorted group numbers in ``0..count-1``: which elements are among the first
    ``k`` of their group (each query's ``k`` best, once its candidates are sorted best first)."""
    starts = np.searchsorted(groups, np.arange(count))
    first: npt.NDArray[np.bool_] = np.arange(len(groups)) - starts[groups] < k
    return first
