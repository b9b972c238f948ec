"""The paper's multi-level truncation and the truncation methods it is compared with.

Pure, jittable functions of arrays. StyleGAN's own truncation toward ``w_avg`` belongs to
the generator (:func:`mlss_jax.networks.generator.stylegan_truncation`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlss_jax.networks.generator import stylegan_truncation

METHODS = ("stylegan", "multilevel")



def multilevel_truncation(ws: jax.Array, centres: tuple[jax.Array, ...], assignments: jax.Array,
                          level_ranges: tuple[tuple[int, int], ...],
                          psi: float | jax.Array) -> jax.Array:
    """The paper's multi-level truncation (Algorithm 1): each level toward its own cluster centre.

    Args:
      ws: [N, num_ws, w_dim] untruncated latents (``f(z)`` broadcast, or W+).
      centres: per level, the cluster centres [K_l, w_dim].
      assignments: [N, L] cluster of each sample at each level (from C_l).
      level_ranges: per level, the ``(start, stop)`` of its inputs. Static. Inputs
        outside every range (the last one) keep ``ws``.
      psi: one strength for all levels, or [L], one per level; may be traced.
    """
    psi = jnp.broadcast_to(jnp.asarray(psi, ws.dtype), (len(level_ranges),))
    layer = jnp.arange(ws.shape[1])[None, :, None]
    out = ws
    for level, (start, stop) in enumerate(level_ranges):
        centre = centres[level][assignments[:, level]][:, None, :]      # [N, 1, w_dim]
        truncated = centre + psi[level] * (ws - centre)
        out = jnp.where((layer >= start) & (layer < stop), truncated, out)
    return out


def truncate(method: str, ws: jax.Array, psi: float | jax.Array, w_avg: jax.Array,
             centres: tuple[jax.Array, ...], assignments: jax.Array,
             level_ranges: tuple[tuple[int, int], ...]) -> jax.Array:
    """ws truncated by one of :data:`METHODS` at strength ``psi``, on the same latents.

    ``stylegan`` uses ``w_avg`` only; ``multilevel`` the per-level ``centres``, each sample's
    ``assignments`` [N, L] and the levels' input ranges.
    """
    if method == "stylegan":
        return stylegan_truncation(ws, w_avg, psi)
    if method == "multilevel":
        return multilevel_truncation(ws, centres, assignments, level_ranges, psi)
    raise ValueError(f"unknown truncation method {method!r} (one of {', '.join(METHODS)})")
