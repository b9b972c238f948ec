"""Truncation of W latents (pure, jittable functions of arrays)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def stylegan_truncation(ws: jax.Array, w_avg: jax.Array, psi: float | jax.Array,
                        cutoff: int | None = None) -> jax.Array:
    """StyleGAN truncation: ``w_avg + psi (w - w_avg)`` on the first ``cutoff`` inputs.

    Args:
      ws: [N, num_ws, w_dim] latents.
      w_avg: [w_dim] centre of W.
      psi: strength, a scalar (1 leaves ws unchanged); may be traced.
      cutoff: number of leading layer inputs to truncate (None: all). Static.
    """
    truncated = w_avg + psi * (ws - w_avg)
    if cutoff is None:
        return truncated
    layer = jnp.arange(ws.shape[1])[None, :, None]
    return jnp.where(layer < cutoff, truncated, ws)
