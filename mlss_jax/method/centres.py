"""Cluster assignment of ordinary samples and the cluster centres used by multi-level truncation.

``docs/method.md``: the centre c[l, k] is the mean of w = f(z) over samples that
C_l assigns to k; with the image classifier, C_l classifies g(f(z)). A cluster
that no sample falls into takes the option's definition instead: the mean of
M_l(z) over z drawn from its Gaussian.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import ConfigError
from mlss_jax.method.models import LevelModel, apply_mapper, sample_mixture

CENTRE_MODES = ("assigned", "mixture")


def mixture_centres(model: LevelModel, samples_per_cluster: int = 256, seed: int = 0) -> np.ndarray:
    """[K, w_dim]: the mean of M_l(z), z ~ N(mu_k, sigma_k^2), for each cluster k."""
    k, z_dim = model.config.num_clusters, model.generator_config.z_dim
    eps = jax.random.normal(jax.random.PRNGKey(seed), (k, samples_per_cluster, z_dim))
    clusters = jnp.repeat(jnp.arange(k), samples_per_cluster)
    z = sample_mixture(model.gen["mixture"], clusters, eps.reshape(-1, z_dim))
    w = apply_mapper(model.generator_config, model.gen["mapper"], z)
    return np.asarray(w.reshape(k, samples_per_cluster, -1).mean(1))


def cluster_centres(model: LevelModel, w: np.ndarray, assignments: np.ndarray,
                    mode: str = "assigned") -> np.ndarray:
    """[K, w_dim] centres of a level from samples w [N, w_dim] and their clusters [N]."""
    if mode not in CENTRE_MODES:
        raise ConfigError(f"centre mode must be one of {CENTRE_MODES}, got {mode!r}")
    fallback = mixture_centres(model)
    if mode == "mixture":
        return fallback
    w, assignments = np.asarray(w, np.float64), np.asarray(assignments)
    centres = fallback.astype(np.float64)
    for k in range(model.config.num_clusters):
        members = assignments == k
        if members.any():
            centres[k] = w[members].mean(0)
    return centres.astype(np.float32)
