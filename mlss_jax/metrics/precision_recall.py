"""Improved precision and recall (Kynkäänniemi et al., 2019), computed in blocks.

Each set's manifold is the union of balls around its samples, a sample's radius
being the distance to its k-th nearest neighbour in its own set (itself
excluded). Precision: the share of generated samples inside the real manifold;
recall: the share of real samples inside the generated one.

Distances are computed block by block (``block`` query rows against up to
``columns`` support samples at a time, inside ``lax.map`` and ``lax.scan``), so
50k x 50k sets never materialise the full distance matrix; the k nearest
neighbours are kept as a running top-k. The column chunk is wider than the row
block because XLA's CPU matrix product is about twice as fast on 1024 x 8192
products as on 1024 x 1024 ones (``benchmarks/precision_recall.py``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.distances import pairwise_sq_distances


def _pad_rows(x: jax.Array, block: int) -> tuple[jax.Array, int]:
    n = x.shape[0]
    padded = -(-n // block) * block
    return jnp.pad(x, ((0, padded - n), (0, 0))), n


def _column_chunks(x: jax.Array, block: int, columns: int) -> tuple[jax.Array, jax.Array, int]:
    """``x`` zero-padded to whole ``block`` rows, split into equal chunks of at most
    ``max(columns, block)`` rows: the chunks [C, rows, D], a validity mask [C, rows], and len(x).

    The chunk is the widest whole number of blocks that divides the padded length, so no chunk
    is padded beyond the last block.
    """
    padded, n = _pad_rows(x, block)
    n_blocks = padded.shape[0] // block
    per_chunk = max(d for d in range(1, n_blocks + 1)
                    if n_blocks % d == 0 and d * block <= max(columns, block))
    valid = jnp.arange(padded.shape[0]) < n
    rows = per_chunk * block
    return padded.reshape(-1, rows, x.shape[1]), valid.reshape(-1, rows), n


def _fold_over_support(queries: jax.Array, support: jax.Array, radii: jax.Array | None,
                       block: int, columns: int, init: Callable[[int], jax.Array],
                       combine: Callable[..., jax.Array]) -> jax.Array:
    """For each block of query rows, fold ``combine(acc, sq_distances, radii, valid)`` over the
    support's column chunks, starting from ``init(block)``; returns the accumulators, row by row.

    ``sq_distances`` is the [block, chunk] tile, ``radii`` and ``valid`` the chunk's radii and
    validity mask (padded support rows are not valid; ``radii`` is zeros when None).
    """
    q, n_q = _pad_rows(jnp.asarray(queries, jnp.float32), block)
    chunks, valid, n_s = _column_chunks(jnp.asarray(support, jnp.float32), block, columns)
    radii = jnp.zeros(n_s) if radii is None else jnp.asarray(radii, jnp.float32)
    radii = jnp.pad(radii, (0, valid.size - n_s)).reshape(valid.shape)

    def rows(qb):
        def scan_chunks(acc, chunk):
            sb, rb, vb = chunk
            return combine(acc, pairwise_sq_distances(qb, sb), rb, vb), None

        acc, _ = jax.lax.scan(scan_chunks, init(qb.shape[0]), (chunks, radii, valid))
        return acc

    out = jax.lax.map(rows, q.reshape(-1, block, q.shape[1]))
    return out.reshape(-1, *out.shape[2:])[:n_q]


@functools.partial(jax.jit, static_argnames=("k", "block", "columns"))
def knn_radii(features: jax.Array, k: int = 3, block: int = 1024,
              columns: int = 8192, queries: jax.Array | None = None) -> jax.Array:
    """Distance of each sample to its k-th nearest neighbour in the same set (self excluded).

    ``queries``: only these rows of ``features`` (a share of the set's radii, e.g. one device's).
    """
    def keep_nearest(best, d, _, valid):
        merged = jnp.concatenate([best, jnp.where(valid[None, :], d, jnp.inf)], axis=1)
        return -jax.lax.top_k(-merged, k + 1)[0]

    best = _fold_over_support(features if queries is None else queries, features, None, block,
                              columns,
                              lambda n: jnp.full((n, k + 1), jnp.inf), keep_nearest)
    return jnp.sqrt(best[:, k])  # the (k+1)-th smallest includes the sample itself at distance 0


@functools.partial(jax.jit, static_argnames=("block", "columns"))
def in_manifold(queries: jax.Array, support: jax.Array, radii: jax.Array,
                block: int = 1024, columns: int = 8192) -> jax.Array:
    """For each query, whether it lies within ``radii[j]`` of some ``support[j]`` (bool [N])."""
    def any_ball(hit, d, r, valid):
        return hit | jnp.any((d <= jnp.square(r)[None, :]) & valid[None, :], axis=1)

    return _fold_over_support(queries, support, radii, block, columns,
                              lambda n: jnp.zeros(n, bool), any_ball)


@functools.partial(jax.jit, static_argnames=("block", "columns"))
def mutual_membership(queries: jax.Array, support: jax.Array, query_radii: jax.Array,
                      support_radii: jax.Array, block: int = 1024, columns: int = 8192
                      ) -> tuple[jax.Array, jax.Array]:
    """Manifold membership both ways from one pass over the distances between two sets:
    ``(in_manifold(queries, support, support_radii), in_manifold(support, queries, query_radii))``.

    Precision and recall need the same generated-to-real distances, once reduced along each
    axis: each tile serves both, so the pair costs what one direction did. The row blocks are
    scanned (not mapped) to carry the support's hits from block to block.
    """
    q, n_q = _pad_rows(jnp.asarray(queries, jnp.float32), block)
    q_valid = (jnp.arange(q.shape[0]) < n_q).reshape(-1, block)
    q_radii = jnp.pad(jnp.asarray(query_radii, jnp.float32), (0, q.shape[0] - n_q))
    chunks, valid, n_s = _column_chunks(jnp.asarray(support, jnp.float32), block, columns)
    s_radii = jnp.pad(jnp.asarray(support_radii, jnp.float32), (0, valid.size - n_s))

    def row_block(support_hits, rows):
        qb, q_rb, q_vb = rows

        def chunk(query_hits, tile):
            sb, s_rb, s_vb, hits = tile
            d = pairwise_sq_distances(qb, sb)
            query_hits = query_hits | jnp.any((d <= jnp.square(s_rb)[None, :]) & s_vb[None, :],
                                              axis=1)
            hits = hits | jnp.any((d <= jnp.square(q_rb)[:, None]) & q_vb[:, None], axis=0)
            return query_hits, hits

        query_hits, support_hits = jax.lax.scan(
            chunk, jnp.zeros(block, bool), (chunks, s_radii.reshape(valid.shape), valid,
                                            support_hits))
        return support_hits, query_hits

    support_hits, query_hits = jax.lax.scan(
        row_block, jnp.zeros(valid.shape, bool),
        (q.reshape(-1, block, q.shape[1]), q_radii.reshape(-1, block), q_valid))
    return query_hits.reshape(-1)[:n_q], support_hits.reshape(-1)[:n_s]


@functools.partial(jax.jit, static_argnames=("block", "columns"))
def realism_scores(queries: jax.Array, support: jax.Array, radii: jax.Array,
                   block: int = 1024, columns: int = 8192) -> jax.Array:
    """Realism score of each query: ``max_j radii[j] / ||query - support[j]||``.

    Above 1 means inside the support manifold. (The paper also drops support
    samples whose radius exceeds the median before this max; pass such a subset
    to follow it.)
    """
    def best_ratio(best, d, r, valid):
        ratio = jnp.where(valid[None, :], r[None, :] / jnp.maximum(jnp.sqrt(d), 1e-12), 0.0)
        return jnp.maximum(best, jnp.max(ratio, axis=1))

    return _fold_over_support(queries, support, radii, block, columns, jnp.zeros, best_ratio)


@dataclasses.dataclass(frozen=True)
class PrecisionRecall:
    precision: float
    recall: float


def precision_recall(real: np.ndarray | jax.Array, fake: np.ndarray | jax.Array, k: int = 3,
                     block: int = 1024, columns: int = 8192) -> PrecisionRecall:
    """Improved precision and recall of ``fake`` against ``real`` features [N, D].

    ``block`` x ``columns`` bounds the distance tile in memory. (A sweep, which compares many
    sets with one real set, computes the real radii once: ``truncation_sweep.run_sweep``.)
    """
    real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {real.shape} and {fake.shape}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"each set needs more than k = {k} samples")
    block = min(block, max(len(real), len(fake)))
    real_radii = knn_radii(real, k, block, columns)
    fake_radii = knn_radii(fake, k, block, columns)
    fake_in_real, real_in_fake = mutual_membership(fake, real, fake_radii, real_radii, block,
                                                   columns)
    return PrecisionRecall(float(jnp.mean(fake_in_real)), float(jnp.mean(real_in_fake)))
