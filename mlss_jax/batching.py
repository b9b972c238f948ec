"""Run a jitted function over arrays in fixed-size batches, so it compiles once."""

from __future__ import annotations

from typing import Callable

import numpy as np


def map_in_batches(fn: Callable[..., object], batch_size: int, *arrays: np.ndarray) -> np.ndarray:
    """``fn`` applied to aligned chunks of ``arrays`` (the last chunk zero-padded to
    ``batch_size`` and its padding dropped from the output); outputs concatenated."""
    n = len(arrays[0])
    out = []
    for start in range(0, n, batch_size):
        chunks = [a[start:start + batch_size] for a in arrays]
        count = len(chunks[0])
        if count < batch_size:
            chunks = [np.concatenate([c, np.zeros((batch_size - count, *c.shape[1:]), c.dtype)])
                      for c in chunks]
        out.append(np.asarray(fn(*chunks))[:count])
    return np.concatenate(out)
