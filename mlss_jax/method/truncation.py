"""The paper's multi-level truncation and the truncation methods it is compared with.

Pure, jittable functions of arrays:

- ``stylegan``: every input toward ``w_avg`` (StyleGAN's own, in the generator:
  :func:`mlss_jax.networks.generator.stylegan_truncation`);
- ``cutoff``: only the first ``cutoff`` inputs toward ``w_avg`` (NVIDIA's ``truncation_cutoff``);
- ``multimodal``: every input toward the nearest of K centres of W found by k-means on
  standardised samples (Self-Distilled StyleGAN's multi-modal truncation);
- ``multilevel``: each level's inputs toward its own cluster's centre (the paper's Algorithm 1),
  with one strength for all levels or one per level.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import ConfigError
from mlss_jax.networks.generator import stylegan_truncation

METHODS = ("stylegan", "cutoff", "multimodal", "multilevel")



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


def multimodal_truncation(ws: jax.Array, centres: jax.Array, assignment: jax.Array,
                          psi: float | jax.Array) -> jax.Array:
    """Every input of sample i toward ``centres[assignment[i]]``: ws [N, num_ws, w_dim],
    centres [K, w_dim], assignment [N]."""
    centre = centres[assignment][:, None, :]
    return centre + psi * (ws - centre)


def _sq_distances(x: jax.Array, centres: jax.Array) -> jax.Array:
    return (jnp.sum(x * x, -1)[:, None] - 2.0 * x @ centres.T + jnp.sum(centres * centres, -1)[None])


@jax.jit
def nearest_centre(w: jax.Array, centres: jax.Array) -> jax.Array:
    """[N] index of the centre nearest (L2) to each w [N, w_dim]."""
    return jnp.argmin(_sq_distances(w, centres), axis=-1)


@functools.partial(jax.jit, static_argnames=("k", "iterations"))
def kmeans(x: jax.Array, k: int, key: jax.Array, iterations: int = 100) -> tuple[jax.Array, jax.Array]:
    """k-means of x [N, D]: (centres [k, D], assignment [N]).

    k-means++ initialisation (each next centre drawn with probability proportional to its squared
    distance from the centres so far), then ``iterations`` Lloyd steps; a centre left without
    samples stays where it was.
    """
    n = x.shape[0]
    key, first_key = jax.random.split(key)
    first = x[jax.random.randint(first_key, (), 0, n)]
    d2 = jnp.sum((x - first) ** 2, -1)

    def add_centre(i, carry):
        centres, d2, key = carry
        key, sub = jax.random.split(key)
        total = jnp.sum(d2)
        p = jnp.where(total > 0, d2 / jnp.where(total > 0, total, 1.0), 1.0 / n)
        c = x[jax.random.choice(sub, n, p=p)]
        return centres.at[i].set(c), jnp.minimum(d2, jnp.sum((x - c) ** 2, -1)), key

    start = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(first)
    centres, _, _ = jax.lax.fori_loop(1, k, add_centre, (start, d2, key))

    def lloyd(_, centres):
        members = jax.nn.one_hot(jnp.argmin(_sq_distances(x, centres), -1), k, dtype=x.dtype)
        counts = members.sum(0)[:, None]
        return jnp.where(counts > 0, members.T @ x / jnp.maximum(counts, 1.0), centres)

    centres = jax.lax.fori_loop(0, iterations, lloyd, centres)
    return centres, jnp.argmin(_sq_distances(x, centres), -1)


def multimodal_centres(w: np.ndarray, k: int = 64, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """K centres [k, w_dim] of W from samples w [N, w_dim]: k-means on standardised samples
    (per dimension), mapped back to W (as the multi-modal truncation tools do)."""
    w = np.asarray(w, np.float32)
    if not 1 <= k <= len(w):
        raise ConfigError(f"multimodal K must be in 1..{len(w)} (the samples), got {k}")
    mean, std = w.mean(0), w.std(0) + 1e-8
    centres, _ = kmeans(jnp.asarray((w - mean) / std), k, jax.random.PRNGKey(seed), iterations)
    return np.asarray(centres) * std + mean


@dataclasses.dataclass(frozen=True)
class TruncationTargets:
    """Where each method truncates toward, and which target each sample gets.

    Attributes:
      w_avg: [w_dim] the generator's centre of W (stylegan, cutoff).
      cutoff: inputs the cutoff method truncates (the first ``cutoff``).
      modes: [K, w_dim] multimodal centres; mode_assignment: [N] each sample's centre.
      level_centres: per level, its cluster centres [K_l, w_dim].
      level_assignments: [N, L] each sample's cluster at each level.
      level_ranges: per level, the (start, stop) of its inputs.
    """

    w_avg: np.ndarray
    cutoff: int
    modes: np.ndarray
    mode_assignment: np.ndarray
    level_centres: tuple[np.ndarray, ...]
    level_assignments: np.ndarray
    level_ranges: tuple[tuple[int, int], ...]

    def take(self, count: int) -> "TruncationTargets":
        """The targets of the first ``count`` samples."""
        return dataclasses.replace(self, mode_assignment=self.mode_assignment[:count],
                                   level_assignments=self.level_assignments[:count])


def truncate(method: str, ws: jax.Array, psi: float | jax.Array | tuple,
             targets: TruncationTargets) -> jax.Array:
    """ws [N, num_ws, w_dim] truncated by one of :data:`METHODS` at strength ``psi`` (for
    ``multilevel`` also one strength per level)."""
    ws = jnp.asarray(ws)
    if method == "stylegan":
        return stylegan_truncation(ws, jnp.asarray(targets.w_avg), psi)
    if method == "cutoff":
        return stylegan_truncation(ws, jnp.asarray(targets.w_avg), psi, targets.cutoff)
    if method == "multimodal":
        return multimodal_truncation(ws, jnp.asarray(targets.modes),
                                     jnp.asarray(targets.mode_assignment), psi)
    if method == "multilevel":
        return multilevel_truncation(ws, tuple(jnp.asarray(c) for c in targets.level_centres),
                                     jnp.asarray(targets.level_assignments), targets.level_ranges,
                                     jnp.asarray(psi, ws.dtype))
    raise ConfigError(f"unknown truncation method {method!r} (one of {', '.join(METHODS)})")


def parse_methods(text: str) -> tuple[str, ...]:
    """``"stylegan,multilevel"`` -> the methods, in :data:`METHODS` order."""
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown or not chosen:
        raise ConfigError(f"unknown truncation method {unknown[0] if unknown else text!r} "
                          f"(choose from {', '.join(METHODS)})")
    return tuple(m for m in METHODS if m in chosen)


def check_psi(value: float, name: str = "psi") -> None:
    """A truncation strength lies in [0, 1]: 0 is the target itself, 1 no truncation."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {value:g}")


def check_psis(config: object, name: str) -> None:
    """A config's list of psi values: at least one, each in [0, 1], none twice."""
    psis = getattr(config, name)
    if not psis:
        raise ConfigError(f"{name} must list at least one value")
    for psi in psis:
        check_psi(psi, name)
    twice = [psi for psi in psis if psis.count(psi) > 1]
    if twice:
        raise ConfigError(f"{name} must list each value once, got {twice[0]:g} twice")


def parse_level_psis(text: str, levels: tuple[str, ...]) -> dict[str, float]:
    """``"coarse=0.5,medium=0.8,fine=1"`` -> {level: psi}; every value in [0, 1]."""
    out: dict[str, float] = {}
    for part in text.split(","):
        level, sep, value = part.partition("=")
        level = level.strip()
        if not sep or level not in levels:
            raise ConfigError(f"psi must be level=value pairs with levels {', '.join(levels)}, "
                              f"got {part.strip()!r}")
        try:
            psi = float(value)
        except ValueError:
            raise ConfigError(f"psi of {level} must be a number, got {value!r}") from None
        check_psi(psi, f"psi of {level}")
        if level in out:
            raise ConfigError(f"psi gives {level} twice")
        out[level] = psi
    return out


def format_level_psis(level_psis: tuple[tuple[str, float], ...] | dict[str, float]) -> str:
    """{level: psi} (or its items) -> ``"coarse=0.5,medium=0.8"``, as :func:`parse_level_psis`
    reads it."""
    return ",".join(f"{level}={psi!r}" for level, psi in dict(level_psis).items())
