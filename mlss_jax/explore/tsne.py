"""Exact t-SNE (van der Maaten and Hinton, 2008) in JAX, for a few thousand points.

O(N^2) per iteration, all inside one jitted ``lax.scan``: per-point Gaussian
bandwidths found by bisection to the target perplexity, symmetrised affinities,
early exaggeration, gradient descent with momentum and adaptive gains.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from mlss_jax.distances import pairwise_sq_distances


def _affinities(x: jax.Array, perplexity: float, iterations: int = 64) -> jax.Array:
    """Symmetric P [N, N]: row i a Gaussian around x_i whose entropy is log(perplexity)."""
    n = x.shape[0]
    d = pairwise_sq_distances(x, x)
    d = d / jnp.mean(d)  # scale-free bisection range
    off_diagonal = ~jnp.eye(n, dtype=bool)
    target = jnp.log(perplexity)

    def row_probs(beta):
        logits = jnp.where(off_diagonal, -d * beta[:, None], -jnp.inf)
        return jax.nn.softmax(logits, axis=1)

    def entropy(p):
        return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.maximum(p, 1e-30)), 0.0), axis=1)

    def bisect(_, bounds):
        lo, hi = bounds  # in log(beta)
        mid = 0.5 * (lo + hi)
        too_flat = entropy(row_probs(jnp.exp(mid))) > target  # entropy falls as beta grows
        return jnp.where(too_flat, mid, lo), jnp.where(too_flat, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, bisect, (jnp.full(n, -20.0), jnp.full(n, 20.0)))
    p = row_probs(jnp.exp(0.5 * (lo + hi)))
    return (p + p.T) / (2.0 * n)


@functools.partial(jax.jit, static_argnames=("iterations", "exaggeration_iterations"))
def tsne(x: jax.Array, rng: jax.Array, perplexity: float = 30.0, iterations: int = 1000,
         exaggeration_iterations: int = 250, exaggeration: float = 12.0,
         learning_rate: float | None = None) -> jax.Array:
    """2-D embedding [N, 2] of points x [N, D]."""
    n = x.shape[0]
    p = _affinities(jnp.asarray(x, jnp.float32), perplexity)
    lr = jnp.maximum(n / exaggeration / 4.0, 50.0) if learning_rate is None else learning_rate
    y0 = 1e-4 * jax.random.normal(rng, (n, 2))

    def step(carry, it):
        y, velocity, gains = carry
        num = 1.0 / (1.0 + pairwise_sq_distances(y, y)) * (1.0 - jnp.eye(n))
        q = jnp.maximum(num / jnp.sum(num), 1e-12)
        scale = jnp.where(it < exaggeration_iterations, exaggeration, 1.0)
        pq = (scale * p - q) * num
        grad = 4.0 * (jnp.sum(pq, axis=1)[:, None] * y - pq @ y)
        gains = jnp.where(jnp.sign(grad) != jnp.sign(velocity), gains + 0.2, gains * 0.8)
        gains = jnp.maximum(gains, 0.01)
        momentum = jnp.where(it < exaggeration_iterations, 0.5, 0.8)
        velocity = momentum * velocity - lr * gains * grad
        y = y + velocity
        return (y - jnp.mean(y, axis=0), velocity, gains), None

    init = (y0, jnp.zeros_like(y0), jnp.ones_like(y0))
    (y, _, _), _ = jax.lax.scan(step, init, jnp.arange(iterations))
    return y
