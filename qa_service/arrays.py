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
