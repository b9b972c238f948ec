"""Networks bound to their weights: the public ``load_generator`` / ``load_discriminator`` API.

Each object holds a config and a variable tree and calls the pure, jitted functions
``generator_mapping``, ``generator_synthesis`` (:mod:`mlss_jax.networks.generator`) and
``discriminator_logits`` (:mod:`mlss_jax.networks.discriminator`). Training applies the Flax
modules to its own parameters instead.
"""

from __future__ import annotations

import functools
import hashlib

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.networks.config import DiscriminatorConfig, GeneratorConfig
from mlss_jax.networks.discriminator import discriminator_logits
from mlss_jax.networks.generator import generator_mapping, generator_synthesis


class StyleGAN2Generator:
    """A StyleGAN2 generator with its weights.

    Attributes: ``config``, ``variables`` ({'params', 'buffers'}), ``z_dim``,
    ``w_dim``, ``num_ws``, ``resolution``, ``w_avg``.
    """

    def __init__(self, config: GeneratorConfig, variables: dict) -> None:
        self.config = config
        self.variables = jax.tree_util.tree_map(jnp.asarray, variables)

    z_dim = property(lambda self: self.config.z_dim)
    w_dim = property(lambda self: self.config.w_dim)
    num_ws = property(lambda self: self.config.num_ws)
    resolution = property(lambda self: self.config.resolution)
    img_channels = property(lambda self: self.config.img_channels)

    @property
    def w_avg(self) -> jax.Array:
        return self.variables["buffers"]["mapping"]["w_avg"]

    @functools.cached_property
    def weights_sha256(self) -> str:
        """SHA-256 of the weights: every array of ``variables`` (its path, dtype, shape and
        bytes, in path order). The same network read from its pickle or from a converted
        checkpoint gives the same digest."""
        digest = hashlib.sha256()
        for path, leaf in sorted(jax.tree_util.tree_flatten_with_path(self.variables)[0],
                                 key=lambda item: jax.tree_util.keystr(item[0])):
            array = np.ascontiguousarray(jax.device_get(leaf))
            digest.update(f"{jax.tree_util.keystr(path)} {array.dtype} {array.shape}\n".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    def mapping(self, z: jax.Array, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> jax.Array:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], truncated toward ``w_avg`` when psi != 1."""
        z = jnp.asarray(z, jnp.float32)
        chex.assert_shape(z, (None, self.z_dim))
        if truncation_cutoff is not None and not 0 <= truncation_cutoff <= self.num_ws:
            raise ValueError(f"truncation_cutoff must be in 0..{self.num_ws}")
        return generator_mapping(self.config, self.variables, z, truncation_psi, truncation_cutoff)

    def synthesis(self, ws: jax.Array, noise_mode: str = "const",
                  rng: jax.Array | None = None) -> jax.Array:
        """ws [N, num_ws, w_dim] -> images [N, H, W, C], float32 in about [-1, 1]."""
        ws = jnp.asarray(ws, jnp.float32)
        chex.assert_shape(ws, (None, self.num_ws, self.w_dim))
        return generator_synthesis(self.config, self.variables, ws, noise_mode, rng)

    def __call__(self, z: jax.Array, truncation_psi: float = 1.0,
                 truncation_cutoff: int | None = None, noise_mode: str = "const",
                 rng: jax.Array | None = None) -> jax.Array:
        return self.synthesis(self.mapping(z, truncation_psi, truncation_cutoff), noise_mode, rng)


class StyleGAN2Discriminator:
    """A StyleGAN2 discriminator with its weights: ``D(images [N, R, R, C]) -> logits [N, 1]``."""

    def __init__(self, config: DiscriminatorConfig, variables: dict) -> None:
        self.config = config
        self.variables = jax.tree_util.tree_map(jnp.asarray, variables)

    resolution = property(lambda self: self.config.resolution)

    def __call__(self, img: jax.Array) -> jax.Array:
        img = jnp.asarray(img, jnp.float32)
        cfg = self.config
        chex.assert_shape(img, (None, cfg.resolution, cfg.resolution, cfg.img_channels))
        return discriminator_logits(cfg, self.variables, img)
