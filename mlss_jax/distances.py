"""Pairwise squared Euclidean distances: one helper for precision/recall, centre assignment,
k-means and t-SNE."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def pairwise_sq_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """``||a_i - b_j||^2`` [len(a), len(b)] of rows a [N, D] and b [M, D].

    Expanded as ``||a||^2 - 2 a.b + ||b||^2`` so the work is one matrix product; the
    expansion's rounding can go slightly below 0, so it is clamped there.
    """
    d = jnp.sum(a * a, -1)[:, None] - 2.0 * (a @ b.T) + jnp.sum(b * b, -1)[None, :]
    return jnp.maximum(d, 0.0)
