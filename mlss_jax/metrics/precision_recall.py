"""Improved precision and recall (Kynkäänniemi et al., 2019), computed in blocks.

Each set's manifold is the union of balls around its samples, a sample's radius
being the distance to its k-th nearest neighbour in its own set (itself
excluded). Precision: the share of generated samples inside the real manifold;
recall: the share of real samples inside the generated one.

Distances are computed block by block (``block`` x ``block`` at a time, inside
``lax.map``), so 50k x 50k sets never materialise the full distance matrix; the
k nearest neighbours are kept as a running top-k.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np


def _pad_rows(x: jax.Array, block: int) -> tuple[jax.Array, int]:
    n = x.shape[0]
    padded = -(-n // block) * block
    return jnp.pad(x, ((0, padded - n), (0, 0))), n


def _sq_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """Squared Euclidean distances [len(a), len(b)], clamped at 0 (float rounding)."""
    d = (jnp.sum(a * a, 1)[:, None] - 2.0 * (a @ b.T) + jnp.sum(b * b, 1)[None, :])
    return jnp.maximum(d, 0.0)


@functools.partial(jax.jit, static_argnames=("k", "block"))
def knn_radii(features: jax.Array, k: int = 3, block: int = 1024) -> jax.Array:
    """Distance of each sample to its k-th nearest neighbour in the same set (self excluded)."""
    x, n = _pad_rows(jnp.asarray(features, jnp.float32), block)
    col_blocks = x.reshape(-1, block, x.shape[1])
    col_valid = (jnp.arange(x.shape[0]) < n).reshape(-1, block)

    def rows(q):
        def scan_cols(best, cols):
            c, valid = cols
            d = jnp.where(valid[None, :], _sq_distances(q, c), jnp.inf)
            merged = jnp.concatenate([best, d], axis=1)
            return -jax.lax.top_k(-merged, k + 1)[0], None

        init = jnp.full((q.shape[0], k + 1), jnp.inf)
        best, _ = jax.lax.scan(scan_cols, init, (col_blocks, col_valid))
        return best[:, k]  # the (k+1)-th smallest includes the sample itself at distance 0

    radii_sq = jax.lax.map(rows, col_blocks).reshape(-1)[:n]
    return jnp.sqrt(radii_sq)


@functools.partial(jax.jit, static_argnames=("block",))
def in_manifold(queries: jax.Array, support: jax.Array, radii: jax.Array,
                block: int = 1024) -> jax.Array:
    """For each query, whether it lies within ``radii[j]`` of some ``support[j]`` (bool [N])."""
    q, n_q = _pad_rows(jnp.asarray(queries, jnp.float32), block)
    s, n_s = _pad_rows(jnp.asarray(support, jnp.float32), block)
    r = jnp.pad(jnp.asarray(radii, jnp.float32), (0, s.shape[0] - n_s), constant_values=-1.0)
    s_blocks, r_blocks = s.reshape(-1, block, s.shape[1]), r.reshape(-1, block)

    def rows(qb):
        def scan_cols(hit, cols):
            sb, rb = cols
            # padded support rows carry radius -1: never a hit
            inside = (_sq_distances(qb, sb) <= jnp.square(rb)[None, :]) & (rb >= 0)[None, :]
            return hit | jnp.any(inside, axis=1), None

        hit, _ = jax.lax.scan(scan_cols, jnp.zeros(qb.shape[0], bool), (s_blocks, r_blocks))
        return hit

    return jax.lax.map(rows, q.reshape(-1, block, q.shape[1])).reshape(-1)[:n_q]


@functools.partial(jax.jit, static_argnames=("block",))
def realism_scores(queries: jax.Array, support: jax.Array, radii: jax.Array,
                   block: int = 1024) -> jax.Array:
    """Realism score of each query: ``max_j radii[j] / ||query - support[j]||``.

    Above 1 means inside the support manifold. (The paper also drops support
    samples whose radius exceeds the median before this max; pass such a subset
    to follow it.)
    """
    q, n_q = _pad_rows(jnp.asarray(queries, jnp.float32), block)
    s, n_s = _pad_rows(jnp.asarray(support, jnp.float32), block)
    r = jnp.pad(jnp.asarray(radii, jnp.float32), (0, s.shape[0] - n_s))
    s_blocks, r_blocks = s.reshape(-1, block, s.shape[1]), r.reshape(-1, block)

    def rows(qb):
        def scan_cols(best, cols):
            sb, rb = cols
            ratio = rb[None, :] / jnp.maximum(jnp.sqrt(_sq_distances(qb, sb)), 1e-12)
            return jnp.maximum(best, jnp.max(ratio, axis=1)), None

        best, _ = jax.lax.scan(scan_cols, jnp.zeros(qb.shape[0]), (s_blocks, r_blocks))
        return best

    return jax.lax.map(rows, q.reshape(-1, block, q.shape[1])).reshape(-1)[:n_q]


@dataclasses.dataclass(frozen=True)
class PrecisionRecall:
    precision: float
    recall: float


def precision_recall(real: np.ndarray | jax.Array, fake: np.ndarray | jax.Array, k: int = 3,
                     block: int = 1024, real_radii: jax.Array | None = None) -> PrecisionRecall:
    """Improved precision and recall of ``fake`` against ``real`` features [N, D].

    ``real_radii`` may be passed to reuse the real set's radii across a sweep.
    """
    real, fake = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {real.shape} and {fake.shape}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"each set needs more than k = {k} samples")
    block = min(block, max(len(real), len(fake)))
    if real_radii is None:
        real_radii = knn_radii(real, k, block)
    fake_radii = knn_radii(fake, k, block)
    precision = jnp.mean(in_manifold(fake, real, real_radii, block))
    recall = jnp.mean(in_manifold(real, fake, fake_radii, block))
    return PrecisionRecall(float(precision), float(recall))
