"""A function applied over the leading axis of arrays, a batch at a time, every batch one shape.

The one batching loop of the package: generation, feature networks, classifiers and LPIPS all
go through :func:`map_in_batches`. The last batch is padded to the size of the others (its last
row repeated, so every padded row is a valid input) and the padding is dropped from the
results, so a jitted function compiles once for any number of rows at or above the batch
size. Row i's result does not depend on the other rows of its batch; on XLA's CPU a different
batch *shape* can change the last float digits, so one shape also keeps results the same
wherever a row falls.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np


def batch_starts(num: int, batch_size: int) -> range:
    """Where each batch of ``num`` rows starts."""
    return range(0, num, batch_size)


def pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` with its last row repeated until it has ``rows`` rows."""
    missing = rows - len(array)
    if missing <= 0:
        return array
    return np.concatenate([array, np.repeat(array[-1:], missing, axis=0)])


def map_in_batches(fn: Callable[..., Any], batch_size: int, *arrays: np.ndarray,
                   progress: bool | None = False, desc: str = "batches") -> Any:
    """``fn(*chunks)`` over aligned ``batch_size``-row chunks of ``arrays``; its results
    (an array or a pytree of arrays, each with one row per input row) concatenated as NumPy.

    Every chunk has ``min(batch_size, N)`` rows: the last one is padded and its padding
    trimmed from the results. ``progress``: a tqdm bar (None: only on a terminal).
    """
    from tqdm import tqdm

    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    num = len(arrays[0])
    if any(len(a) != num for a in arrays):
        raise ValueError(f"arrays must have the same number of rows, got {[len(a) for a in arrays]}")
    if num == 0:  # one call on a zero row gives the results' shapes
        empty = fn(*(np.zeros((1, *np.shape(a)[1:]), np.asarray(a).dtype) for a in arrays))
        return jax.tree.map(lambda x: np.asarray(x)[:0], empty)
    size = min(batch_size, num)
    parts = []
    bar = tqdm(batch_starts(num, size), desc=desc, unit="batch",
               disable=None if progress is None else not progress)
    for start in bar:
        chunks = [np.asarray(a[start:start + size]) for a in arrays]
        count = len(chunks[0])
        out = fn(*(pad_rows(c, size) for c in chunks))
        parts.append(jax.tree.map(lambda x, n=count: np.asarray(x)[:n], out))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
