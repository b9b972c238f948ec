"""mlss-jax: Multi-level Latent Space Structuring on NVIDIA's StyleGAN2 generators, in JAX/Flax."""

from mlss_jax.networks.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from mlss_jax.weights.load import load_discriminator, load_generator

__all__ = ["StyleGAN2Discriminator", "StyleGAN2Generator", "load_discriminator", "load_generator"]
