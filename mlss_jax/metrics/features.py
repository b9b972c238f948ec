"""Feature networks for precision/recall and Fréchet distance.

Numbers from different feature networks are not comparable with each other.
``demo``: the factor classifier's 128-d penultimate features (32x32 shapes only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

FEATURE_NETWORKS = ("demo",)


def demo_features(classifier_dir: str | Path | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 images [N, 32, 32, 3] -> factor-classifier features [N, 128], in batches."""
    from mlss_jax.nets.factor_classifier import classify, load_classifier, to_model_input
    from mlss_jax.paths import FACTOR_CLASSIFIER

    config, params = load_classifier(classifier_dir or FACTOR_CLASSIFIER)

    def embed(images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(f"the demo feature network takes 32x32 RGB images, got {images.shape[1:]}")
        return np.concatenate([np.asarray(classify(config, params, to_model_input(images[i:i + batch_size]))[1])
                               for i in range(0, len(images), batch_size)])

    return embed


def feature_network(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name == "demo":
        return demo_features()
    raise ValueError(f"unknown feature network {name!r} (one of {', '.join(FEATURE_NETWORKS)})")
